/** Who changed what: each service keeps its own audit log (see the console's routes). */
import { useState } from "react";
import { api, query, type Page } from "../../api/client";
import { ListState } from "../../components/ListState";
import { DataTable } from "../../components/DataTable";
import { useResource } from "../../useResource";

interface AuditEntry {
  id: string;
  actor: string;
  action: string;
  object_type: string;
  object_id: string;
  request_id: string | null;
  created_at: string;
}

const LOGS: [string, string][] = [
  ["audit", "Operations (templates, runs, keys, secrets, queues)"],
  ["panel-audit", "Panels"],
  ["datasource-audit", "Data sources"],
];

export function AuditPage() {
  const [log, setLog] = useState("audit");
  const [actor, setActor] = useState("");
  const entries = useResource(
    (signal) => api<Page<AuditEntry>>(`/${log}${query({ actor, limit: "100" })}`, { signal }),
    [log, actor],
  );
  const items = entries.data?.items ?? [];
  return (
    <section aria-labelledby="audit-title">
      <h1 id="audit-title">Audit log</h1>
      <form className="filters" onSubmit={(event) => event.preventDefault()}>
        <label>
          Log
          <select value={log} onChange={(event) => setLog(event.target.value)}>
            {LOGS.map(([value, label]) => (
              <option key={value} value={value}>
                {label}
              </option>
            ))}
          </select>
        </label>
        <label>
          Actor
          <input value={actor} onChange={(event) => setActor(event.target.value)} />
        </label>
      </form>
      <ListState resource={entries} count={items.length} what="The audit log" empty="Nothing recorded." />
      {items.length ? (
        <DataTable label="Audit entries" columns={["When", "Who", "What", "Object", "Request id"]}>
          {items.map((entry) => (
            <tr key={entry.id}>
              <td>{new Date(entry.created_at).toLocaleString()}</td>
              <td>{entry.actor}</td>
              <td>{entry.action}</td>
              <td>
                {entry.object_type} <code>{entry.object_id}</code>
              </td>
              <td>
                <code>{entry.request_id ?? "—"}</code>
              </td>
            </tr>
          ))}
        </DataTable>
      ) : null}
    </section>
  );
}
