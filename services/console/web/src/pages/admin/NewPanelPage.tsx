/** A new panel on a template: one field per parameter, of the parameter's kind, with the
 * label and help people will read; saved, it opens as its form. */
import { useState, type FormEvent } from "react";
import { api } from "../../api/client";
import type { Panel, Template } from "../../api/types";
import { ProblemAlert } from "../../components/ProblemAlert";
import { TextField } from "../../components/TextField";
import { navigate } from "../../router";
import { useAction } from "../../useAction";
import { useResource } from "../../useResource";

/** A template parameter's type → the field type that collects it. */
const FIELD_TYPES: Record<string, string> = {
  string: "text",
  integer: "integer",
  number: "number",
  boolean: "boolean",
  secret: "secret",
};

interface FieldDraft {
  name: string;
  label: string;
  help_text: string;
  field_type: string;
  is_required: boolean;
}

function PanelForm({ template }: { template: Template }) {
  const [slug, setSlug] = useState(template.slug);
  const [title, setTitle] = useState(template.name);
  const [category, setCategory] = useState("");
  const [fields, setFields] = useState<FieldDraft[]>(() =>
    template.parameters.map((parameter) => ({
      name: parameter.name,
      label: parameter.name,
      help_text: "",
      field_type: FIELD_TYPES[parameter.type] ?? "text",
      is_required: parameter.required,
    })),
  );
  const action = useAction();
  const edit = (index: number, change: Partial<FieldDraft>) =>
    setFields((all) => all.map((field, at) => (at === index ? { ...field, ...change } : field)));
  function create(event: FormEvent): void {
    event.preventDefault();
    void action.run(async () => {
      const created = await api<Panel>("/panels", {
        method: "POST",
        body: { slug, title, category, operation_template: template.slug, fields },
      });
      navigate(`/panels/${created.id}`);
    });
  }
  return (
    <form onSubmit={create} className="editor" aria-labelledby="new-panel-title">
      <h1 id="new-panel-title">New panel on {template.name}</h1>
      {action.problem ? <ProblemAlert error={action.problem} title="The panel was refused" /> : null}
      <TextField label="Slug" name="slug" value={slug} onChange={setSlug} required />
      <TextField label="Title" name="title" value={title} onChange={setTitle} required />
      <TextField label="Category" name="category" value={category} onChange={setCategory} />
      {fields.map((field, index) => (
        <fieldset key={field.name}>
          <legend>
            Field <code>{field.name}</code> ({field.field_type})
          </legend>
          <TextField
            label="Label"
            name={`${field.name}-label`}
            value={field.label}
            onChange={(label) => edit(index, { label })}
            required
          />
          <TextField
            label="Help text"
            name={`${field.name}-help`}
            value={field.help_text}
            onChange={(help_text) => edit(index, { help_text })}
          />
        </fieldset>
      ))}
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
  if (template.error) return <ProblemAlert error={template.error} title="The template could not be loaded" />;
  if (!template.data) return <p aria-busy="true">Loading the template…</p>;
  return <PanelForm template={template.data} />;
}
