/** A new panel on a template: one field per parameter to begin with, of the parameter's
 * kind, edited with the fields editor (labels, help, types, choices, data sources); saved,
 * it opens as its form. A 422's errors are shown on the fields they name. */
import { useState, type FormEvent } from "react";
import { ApiError, api, type Page } from "../../api/client";
import type { DataSourceSummary, Panel, Template } from "../../api/types";
import { ProblemAlert } from "../../components/ProblemAlert";
import { TextField } from "../../components/TextField";
import { navigate } from "../../router";
import { useAction } from "../../useAction";
import { useResource } from "../../useResource";
import { FieldsEditor, fieldOf, newDraft, type FieldDraft } from "./FieldsEditor";

/** A template parameter's type → the field type that collects it. */
const FIELD_TYPES: Record<string, string> = {
  string: "text",
  integer: "integer",
  number: "number",
  boolean: "boolean",
  secret: "secret",
};

function PanelForm({ template, sources }: { template: Template; sources: DataSourceSummary[] }) {
  const [slug, setSlug] = useState(template.slug);
  const [title, setTitle] = useState(template.name);
  const [category, setCategory] = useState("");
  const [fields, setFields] = useState<FieldDraft[]>(() =>
    template.parameters.map((parameter) =>
      newDraft({
        name: parameter.name,
        label: parameter.name,
        field_type: FIELD_TYPES[parameter.type] ?? "text",
        is_required: parameter.required,
      }),
    ),
  );
  // A 422's errors name fields by position: once fields move they are shown no more.
  const [moved, setMoved] = useState(false);
  const action = useAction();
  function create(event: FormEvent): void {
    event.preventDefault();
    setMoved(false);
    void action.run(async () => {
      const created = await api<Panel>("/panels", {
        method: "POST",
        body: { slug, title, category, operation_template: template.slug, fields: fields.map(fieldOf) },
      });
      navigate(`/panels/${created.id}`);
    });
  }
  const problems = action.problem instanceof ApiError && !moved ? action.problem.errors : [];
  return (
    <form onSubmit={create} className="editor" aria-labelledby="new-panel-title">
      <h1 id="new-panel-title">New panel on {template.name}</h1>
      <TextField label="Slug" name="slug" value={slug} onChange={setSlug} required />
      <TextField label="Title" name="title" value={title} onChange={setTitle} required />
      <TextField label="Category" name="category" value={category} onChange={setCategory} />
      <FieldsEditor
        fields={fields}
        onChange={(next, reordered) => {
          setFields(next);
          if (reordered) setMoved(true);
        }}
        sources={sources}
        problems={problems}
      />
      {action.problem ? <ProblemAlert error={action.problem} title="The panel was refused" listFields={false} /> : null}
      <button type="submit" className="primary" disabled={action.busy}>
        Create the panel
      </button>
    </form>
  );
}

export function NewPanelPage({ templateSlug }: { templateSlug: string }) {
  const template = useResource(
    (signal) => api<Template>(`/templates/${encodeURIComponent(templateSlug)}`, { signal }),
    [templateSlug],
  );
  const sources = useResource((signal) => api<Page<DataSourceSummary>>("/datasources?limit=200", { signal }), []);
  if (template.error) return <ProblemAlert error={template.error} title="The template could not be loaded" />;
  if (sources.error) return <ProblemAlert error={sources.error} title="The data sources could not be loaded" />;
  if (!template.data || !sources.data) return <p aria-busy="true">Loading the template…</p>;
  return <PanelForm template={template.data} sources={sources.data.items} />;
}
