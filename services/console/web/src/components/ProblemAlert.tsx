import { ApiError } from "../api/client";

/** An error as a person can act on it: what went wrong, each field a 422 refused with why, and
 * the request id to quote. */
export function ProblemAlert({
  error,
  title = "Something went wrong",
  listFields = true,
}: {
  error: unknown;
  title?: string;
  /** False where a form shows each refusal on its field already. */
  listFields?: boolean;
}) {
  const problem = error instanceof ApiError ? error : null;
  const detail = problem?.detail ?? (error instanceof Error ? error.message : String(error));
  return (
    <div role="alert" className="alert">
      <strong>{title}</strong>
      {problem && problem.status > 0 ? ` (${problem.status})` : null}: {detail}
      {listFields && problem?.errors.length ? (
        <ul aria-label="Fields refused">
          {problem.errors.map((refused) => (
            <li key={`${refused.field}: ${refused.message}`}>
              <code>{refused.field}</code>: {refused.message}
            </li>
          ))}
        </ul>
      ) : null}
      {problem?.requestId ? (
        <div className="request-id">
          Request id: <code>{problem.requestId}</code>
        </div>
      ) : null}
    </div>
  );
}
