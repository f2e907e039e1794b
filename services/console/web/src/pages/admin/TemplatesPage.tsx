/** Operation templates: the list, and a new command template (split into argv and checked
 * by operation-svc when it is saved; a 422 says which part is refused). */
import { useState, type FormEvent } from "react";
import { api, type Page } from "../../api/client";
import type { Template } from "../../api/types";
import { ListState } from "../../components/ListState";
import { ProblemAlert } from "../../components/ProblemAlert";
import { TextField } from "../../components/TextField";
import { Link, navigate } from "../../router";
import { useAction } from "../../useAction";
import { useResource } from "../../useResource";
import { PARAMETER_TYPES, parseParameters } from "./parameters";

function NewTemplate() {
  const [slug, setSlug] = useState("");
  const [name, setName] = useState("");
  const [command, setCommand] = useState("");
  const [declared, setDeclared] = useState("");
  const action = useAction();
  function create(event: FormEvent): void {
    event.preventDefault();
    void action.run(async () => {
      const created = await api<Template>("/templates", {
        method: "POST",
        body: { slug, name, command_template: command, parameters: parseParameters(declared) },
      });
      navigate(`/admin/templates/${created.id}`);
    });
  }
  return (
    <form onSubmit={create} aria-labelledby="new-template-title" className="editor">
      <h2 id="new-template-title">New command template</h2>
      {action.problem ? <ProblemAlert error={action.problem} title="The template was refused" /> : null}
      <TextField label="Slug" name="slug" value={slug} onChange={setSlug} required />
      <TextField label="Name" name="name" value={name} onChange={setName} required />
      <TextField
        label="Command"
        name="command"
        value={command}
        onChange={setCommand}
        hint="Split into arguments like a shell would, but run without one; {{name}} is a parameter's value."
        required
      />
      <div className="field">
        <label htmlFor="input-parameters">Parameters</label>
        <p className="hint" id="input-parameters-hint">
          One a line: <code>name</code> or <code>name:type</code> ({PARAMETER_TYPES.join(", ")}), a <code>?</code> after
          the name when it may be left out.
        </p>
        <textarea
          id="input-parameters"
          rows={3}
          value={declared}
          aria-describedby="input-parameters-hint"
          onChange={(event) => setDeclared(event.target.value)}
        />
      </div>
      <button type="submit" className="primary" disabled={action.busy}>
        Create the template
      </button>
    </form>
  );
}

export function TemplatesPage() {
  const templates = useResource((signal) => api<Page<Template>>("/templates?limit=200", { signal }), []);
  const items = templates.data?.items ?? [];
  return (
    <section aria-labelledby="templates-title">
      <h1 id="templates-title">Templates</h1>
      <ListState resource={templates} count={items.length} what="The templates" empty="No template yet." />
      <ul>
        {items.map((template) => (
          <li key={template.id}>
            <Link href={`/admin/templates/${template.id}`}>{template.name}</Link> <code>{template.slug}</code>
          </li>
        ))}
      </ul>
      <NewTemplate />
    </section>
  );
}
