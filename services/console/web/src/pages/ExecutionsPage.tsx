import { useState } from "react";
import { api, query, type Page } from "../api/client";
import type { Execution } from "../api/types";
import { ListState } from "../components/ListState";
import { DataTable } from "../components/DataTable";
import { StatusBadge } from "../components/StatusBadge";
import { StatusFilter } from "../components/StatusFilter";
import { Link } from "../router";
import { useResource } from "../useResource";

export function ExecutionsPage() {
  const [status, setStatus] = useState("");
  const [template, setTemplate] = useState("");
  const [submitter, setSubmitter] = useState("");
  const executions = useResource(
    (signal) => api<Page<Execution>>(`/executions${query({ status, template, submitted_by: submitter })}`, { signal }),
    [status, template, submitter],
  );
  const items = executions.data?.items ?? [];
  return (
    <section aria-labelledby="executions-title">
      <h1 id="executions-title">Runs</h1>
      <form className="filters" onSubmit={(event) => event.preventDefault()}>
        <StatusFilter value={status} onChange={setStatus} />
        <label>
          Template
          <input value={template} onChange={(event) => setTemplate(event.target.value)} placeholder="slug" />
        </label>
        <label>
          Submitted by
          <input value={submitter} onChange={(event) => setSubmitter(event.target.value)} />
        </label>
      </form>
      <ListState resource={executions} count={items.length} what="The runs" empty="No run matches." />
      {items.length ? (
        <DataTable label="Runs" columns={["Started", "Template", "Status", "By", "Duration"]}>
          {items.map((run) => (
            <tr key={run.id}>
              <td>
                <Link href={`/executions/${run.id}`}>{new Date(run.created_at).toLocaleString()}</Link>
              </td>
              <td>{run.template_slug}</td>
              <td>
                <StatusBadge status={run.status} />
              </td>
              <td>{run.submitted_by}</td>
              <td>{run.duration_seconds === null ? "—" : `${run.duration_seconds.toFixed(1)} s`}</td>
            </tr>
          ))}
        </DataTable>
      ) : null}
    </section>
  );
}
