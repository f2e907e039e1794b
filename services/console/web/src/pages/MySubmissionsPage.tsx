import { useState } from "react";
import { api, query, type Page } from "../api/client";
import type { Submission } from "../api/types";
import { currentSession } from "../auth/session";
import { ListState } from "../components/ListState";
import { DataTable } from "../components/DataTable";
import { StatusBadge } from "../components/StatusBadge";
import { StatusFilter } from "../components/StatusFilter";
import { Link } from "../router";
import { useResource } from "../useResource";

export function MySubmissionsPage() {
  const [status, setStatus] = useState("");
  const me = currentSession()?.subject;
  const submissions = useResource(
    (signal) => api<Page<Submission>>(`/submissions${query({ submitted_by: me, status })}`, { signal }),
    [me, status],
  );
  const items = submissions.data?.items ?? [];
  return (
    <section aria-labelledby="mine-title">
      <h1 id="mine-title">My submissions</h1>
      <form className="filters" onSubmit={(event) => event.preventDefault()}>
        <StatusFilter value={status} onChange={setStatus} />
      </form>
      <ListState resource={submissions} count={items.length} what="Your submissions" empty="No submission yet." />
      {items.length ? (
        <DataTable label="My submissions" columns={["Submitted", "Status", "Attempt"]}>
          {items.map((submission) => (
            <tr key={submission.id}>
              <td>
                <Link href={`/submissions/${submission.id}`}>{new Date(submission.created_at).toLocaleString()}</Link>
              </td>
              <td>
                <StatusBadge status={submission.status} />
              </td>
              <td>{submission.attempt}</td>
            </tr>
          ))}
        </DataTable>
      ) : null}
    </section>
  );
}
