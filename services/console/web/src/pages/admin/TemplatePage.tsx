/** A template and its live preview: the exact argv (secrets as ***) and the verdict for the
 * values typed, asked again a moment after each change and after each saved edit; its editor;
 * then a panel on it. */
import { useEffect, useState } from "react";
import { api } from "../../api/client";
import type { Template, TemplatePreview } from "../../api/types";
import { commandLine } from "../../commandLine";
import { ProblemAlert } from "../../components/ProblemAlert";
import { TextField } from "../../components/TextField";
import { Link } from "../../router";
import { useResource } from "../../useResource";
import { TemplateEditor } from "./TemplateEditor";

const PREVIEW_DEBOUNCE_MS = 300;

function Preview({ template }: { template: Template }) {
  const [values, setValues] = useState<Record<string, string>>({});
  const [preview, setPreview] = useState<TemplatePreview>();
  const [problem, setProblem] = useState<unknown>(null);
  const key = JSON.stringify(values);
  useEffect(() => {
    const abort = new AbortController();
    const timer = window.setTimeout(() => {
      api<TemplatePreview>(`/templates/${template.id}/preview`, {
        method: "POST",
        body: { parameters: Object.fromEntries(Object.entries(values).filter(([, value]) => value !== "")) },
        signal: abort.signal,
      }).then(
        (answer) => {
          setPreview(answer);
          setProblem(null);
        },
        (failure: unknown) => abort.signal.aborted || setProblem(failure),
      );
    }, PREVIEW_DEBOUNCE_MS);
    return () => {
      window.clearTimeout(timer);
      abort.abort();
    };
    // `values` is read through its serialized key; a saved edit (a new version) asks again
  }, [template.id, template.version, key]);
  return (
    <section aria-labelledby="preview-title">
      <h2 id="preview-title">Preview</h2>
      {template.parameters.map((parameter) => (
        <TextField
          key={parameter.name}
          label={`${parameter.name} (${parameter.type})`}
          name={`preview-${parameter.name}`}
          type={parameter.type === "secret" ? "password" : "text"}
          value={values[parameter.name] ?? ""}
          onChange={(value) => setValues((current) => ({ ...current, [parameter.name]: value }))}
        />
      ))}
      {problem ? <ProblemAlert error={problem} title="The preview failed" /> : null}
      {preview ? (
        <div aria-live="polite" data-testid="preview">
          <p>
            <strong>{preview.allowed ? "Would run:" : "Would be refused:"}</strong>
          </p>
          {preview.argv ? <pre className="argv">{commandLine(preview.argv)}</pre> : null}
          <ul>
            {preview.refusals.map((refusal, index) => (
              <li key={index}>
                {refusal.field ? `${refusal.field}: ` : ""}
                {refusal.message ?? refusal.code}
              </li>
            ))}
          </ul>
        </div>
      ) : null}
    </section>
  );
}

export function TemplatePage({ templateId }: { templateId: string }) {
  const template = useResource((signal) => api<Template>(`/templates/${templateId}`, { signal }), [templateId]);
  if (template.error) return <ProblemAlert error={template.error} title="The template could not be loaded" />;
  if (!template.data) return <p aria-busy="true">Loading the template…</p>;
  const data = template.data;
  return (
    <section aria-labelledby="template-title">
      <h1 id="template-title">{data.name}</h1>
      <p>
        <code>{data.slug}</code>, version {data.version}: <code>{data.command_template}</code>
      </p>
      <Preview template={data} />
      <TemplateEditor template={data} onSaved={template.reload} />
      <p>
        <Link href={`/admin/panels/new?template=${encodeURIComponent(data.slug)}`}>New panel on this template</Link>
      </p>
    </section>
  );
}
