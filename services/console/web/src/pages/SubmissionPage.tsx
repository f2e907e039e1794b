import { api } from "../api/client";
import { TERMINAL, type Execution, type Submission } from "../api/types";
import { ProblemAlert } from "../components/ProblemAlert";
import { RunView } from "../components/RunView";
import { StatusBadge } from "../components/StatusBadge";
import { usePolling } from "../usePolling";
import { useResource } from "../useResource";

export function SubmissionPage({ submissionId }: { submissionId: string }) {
  const submission = useResource(
    (signal) => api<Submission>(`/submissions/${submissionId}`, { signal }),
    [submissionId],
  );
  const executionId = submission.data?.execution_id ?? null;
  const execution = useResource(
    async (signal) => (executionId ? api<Execution>(`/executions/${executionId}`, { signal }) : null),
    [executionId],
  );
  usePolling(submission.reload, submission.data !== undefined && !TERMINAL.has(submission.data.status));
  usePolling(execution.reload, Boolean(execution.data && !TERMINAL.has(execution.data.status)));
  if (!submission.data) {
    if (submission.error) return <ProblemAlert error={submission.error} title="The submission could not be loaded" />;
    return <p aria-busy="true">Loading the submission…</p>;
  }
  const data = submission.data;
  return (
    <section aria-labelledby="submission-title">
      <h1 id="submission-title">Submission</h1>
      <p>
        Submitted by {data.submitted_by} on {new Date(data.created_at).toLocaleString()}:{" "}
        <StatusBadge status={data.status} />
      </p>
      {data.error ? <ProblemAlert error={new Error(data.error)} title="The submission failed" /> : null}
      {execution.error ? <ProblemAlert error={execution.error} title="The run could not be loaded" /> : null}
      {execution.data ? (
        <RunView
          execution={execution.data}
          refresh={() => {
            execution.reload();
            submission.reload();
          }}
        />
      ) : (
        <p aria-busy="true">Waiting for the run to be created…</p>
      )}
    </section>
  );
}
