/** A panel changed by an admin: its title, category, description and its fields (all of
 * them replaced by a PATCH); a 422's errors are shown on the fields they name. */
import { useState, type FormEvent } from "react";
import { ApiError, api, type Page } from "../../api/client";
import type { DataSourceSummary, PanelDetail } from "../../api/types";
import { ProblemAlert } from "../../components/ProblemAlert";
import { TextField } from "../../components/TextField";
import { Link } from "../../router";
import { useAction } from "../../useAction";
import { useResource } from "../../useResource";
import { FieldsEditor, draftOf, fieldOf, type FieldDraft } from "./FieldsEditor";

function PanelEditor({ panel, sources }: { panel: PanelDetail; sources: DataSourceSummary[] }) {
  const [title, setTitle] = useState(panel.title);
  const [category, setCategory] = useState(panel.category);
  const [description, setDescription] = useState(panel.description);
  const [fields, setFields] = useState<FieldDraft[]>(() => panel.fields.map(draftOf));
  const [saved, setSaved] = useState(false);
  // A 422's errors name fields by position: once fields move they are shown no more.
  const [moved, setMoved] = useState(false);
  const action = useAction();
  function save(event: FormEvent): void {
    event.preventDefault();
    setMoved(false);
    setSaved(false);
    void action.run(async () => {
      await api<PanelDetail>(`/panels/${panel.id}`, {
        method: "PATCH",
        body: { title, category, description, fields: fields.map(fieldOf) },
      });
      setSaved(true);
    });
  }
  const problems = action.problem instanceof ApiError && !moved ? action.problem.errors : [];
  return (
    <form onSubmit={save} className="editor" aria-labelledby="edit-panel-title">
      <h1 id="edit-panel-title">Edit {panel.title}</h1>
      <p>
        On the template <code>{panel.operation_template}</code>. <Link href={`/panels/${panel.id}`}>Open its form</Link>
      </p>
      <TextField label="Title" name="panel-title" value={title} onChange={setTitle} required />
      <TextField label="Category" name="panel-category" value={category} onChange={setCategory} />
      <TextField label="Description" name="panel-description" value={description} onChange={setDescription} />
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
      {saved ? <p role="status">Saved.</p> : null}
      <button type="submit" className="primary" disabled={action.busy}>
        Save the panel
      </button>
    </form>
  );
}

export function EditPanelPage({ panelId }: { panelId: string }) {
  const panel = useResource((signal) => api<PanelDetail>(`/panels/${panelId}`, { signal }), [panelId]);
  const sources = useResource((signal) => api<Page<DataSourceSummary>>("/datasources?limit=200", { signal }), []);
  if (panel.error) return <ProblemAlert error={panel.error} title="The panel could not be loaded" />;
  if (sources.error) return <ProblemAlert error={sources.error} title="The data sources could not be loaded" />;
  if (!panel.data || !sources.data) return <p aria-busy="true">Loading the panel…</p>;
  return <PanelEditor panel={panel.data} sources={sources.data.items} />;
}
