import { ApiError } from "../api/client";

/** An error as a person can act on it: what went wrong and the request id to quote. */
export function ProblemAlert({ error, title = "Something went wrong" }: { error: unknown; title?: string }) {
  const problem = error instanceof ApiError ? error : null;
  const detail = problem?.detail ?? (error instanceof Error ? error.message : String(error));
  return (
    <div role="alert" className="alert">
      <strong>{title}</strong>
      {problem && problem.status > 0 ? ` (${problem.status})` : null}: {detail}
      {problem?.requestId ? (
        <div className="request-id">
          Request id: <code>{problem.requestId}</code>
        </div>
      ) : null}
    </div>
  );
}
