/** One execution: status, the command as rendered, timing, exit code, trace link, live log,
 * cancel (while it runs) and retry (once it has ended). */
import { api } from "../api/client";
import { commandLine } from "../commandLine";
import { TERMINAL, type Execution } from "../api/types";
import { currentSession, hasRole } from "../auth/session";
import { useConfig } from "../configContext";
import { navigate } from "../router";
import { useAction } from "../useAction";
import { LogView } from "./LogView";
import { ProblemAlert } from "./ProblemAlert";
import { StatusBadge } from "./StatusBadge";

function duration(execution: Execution): string {
  if (execution.duration_seconds !== null) return `${execution.duration_seconds.toFixed(1)} s`;
  if (execution.started_at) return "running…";
  return "not started";
}

export function RunView({ execution, refresh }: { execution: Execution; refresh: () => void }) {
  const config = useConfig();
  const action = useAction();
  const ended = TERMINAL.has(execution.status);
  const operator = hasRole(currentSession(), "operator");

  const act = (verb: "cancel" | "retry") =>
    action.run(async () => {
      const answer = await api<Execution>(`/executions/${execution.id}/${verb}`, { method: "POST" });
      if (verb === "retry") navigate(`/executions/${answer.id}`);
      else refresh();
    });

  const command = execution.argv
    ? commandLine(execution.argv)
    : execution.http_request
      ? JSON.stringify(execution.http_request)
      : "—";
  return (
    <>
      <dl className="facts">
        <dt>Status</dt>
        <dd data-testid="status">
          <StatusBadge status={execution.status} />
        </dd>
        <dt>Command</dt>
        <dd>
          <code data-testid="command">{command}</code>
        </dd>
        <dt>Template</dt>
        <dd>{execution.template_slug}</dd>
        <dt>Attempt</dt>
        <dd>{execution.attempt}</dd>
        <dt>Duration</dt>
        <dd>{duration(execution)}</dd>
        <dt>Exit code</dt>
        <dd data-testid="exit-code">{execution.exit_code ?? "—"}</dd>
        {execution.error ? (
          <>
            <dt>Error</dt>
            <dd>{execution.error}</dd>
          </>
        ) : null}
        <dt>Trace</dt>
        <dd>
          {execution.trace_id && config.jaeger_url ? (
            <a href={`${config.jaeger_url}/trace/${execution.trace_id}`} target="_blank" rel="noreferrer">
              {execution.trace_id}
            </a>
          ) : (
            (execution.trace_id ?? "—")
          )}
        </dd>
      </dl>
      {action.problem ? <ProblemAlert error={action.problem} /> : null}
      {operator ? (
        <div className="actions">
          {ended ? (
            <button type="button" onClick={() => void act("retry")} disabled={action.busy}>
              Retry
            </button>
          ) : (
            <button type="button" className="danger" onClick={() => void act("cancel")} disabled={action.busy}>
              Cancel
            </button>
          )}
        </div>
      ) : null}
      <LogView executionId={execution.id} onEnd={refresh} />
    </>
  );
}
