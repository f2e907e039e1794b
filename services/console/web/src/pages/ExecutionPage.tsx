import { api } from "../api/client";
import { TERMINAL, type Execution } from "../api/types";
import { ProblemAlert } from "../components/ProblemAlert";
import { RunView } from "../components/RunView";
import { Link } from "../router";
import { usePolling } from "../usePolling";
import { useResource } from "../useResource";

export function ExecutionPage({ executionId }: { executionId: string }) {
  const execution = useResource((signal) => api<Execution>(`/executions/${executionId}`, { signal }), [executionId]);
  usePolling(execution.reload, execution.data !== undefined && !TERMINAL.has(execution.data.status));
  if (!execution.data) {
    if (execution.error) return <ProblemAlert error={execution.error} title="The run could not be loaded" />;
    return <p aria-busy="true">Loading the run…</p>;
  }
  const run = execution.data;
  return (
    <section aria-labelledby="run-title">
      <h1 id="run-title">Run of {run.template_slug}</h1>
      {run.retry_of ? (
        <p>
          Retry of <Link href={`/executions/${run.retry_of}`}>the previous attempt</Link>.
        </p>
      ) : null}
      {execution.error ? <ProblemAlert error={execution.error} title="The run could not be refreshed" /> : null}
      <RunView execution={run} refresh={execution.reload} />
    </section>
  );
}
