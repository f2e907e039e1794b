import { useState } from "react";
import { api, query, type Page } from "../api/client";
import type { Submission } from "../api/types";
import { currentSession } from "../auth/session";
import { ProblemAlert } from "../components/ProblemAlert";
import { ScrollTable } from "../components/ScrollTable";
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
      {submissions.error ? (
        <ProblemAlert error={submissions.error} title="Your submissions could not be loaded" />
      ) : null}
      {submissions.data && items.length === 0 ? <p className="empty">No submission yet.</p> : null}
      {items.length ? (
        <ScrollTable label="My submissions">
          <thead>
            <tr>
              <th scope="col">Submitted</th>
              <th scope="col">Status</th>
              <th scope="col">Attempt</th>
            </tr>
          </thead>
          <tbody>
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
          </tbody>
        </ScrollTable>
      ) : null}
    </section>
  );
}
