/** The platform's API through the console's origin: the token attached, problems parsed. */
import { endSession, token } from "../auth/session";

export interface FieldProblem {
  field: string;
  code?: string;
  message: string;
}

/** An RFC 9457 problem (or a failure to reach the server), with what a person needs. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly requestId: string | null,
    readonly errors: FieldProblem[] = [],
  ) {
    super(detail);
  }
}

interface Problem {
  title?: string;
  detail?: string;
  request_id?: string | null;
  errors?: FieldProblem[];
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export function authorization(): Record<string, string> {
  const current = token();
  return current ? { Authorization: `Bearer ${current}` } : {};
}

export async function problemOf(response: Response): Promise<ApiError> {
  const requestId = response.headers.get("x-request-id");
  let problem: Problem = {};
  try {
    problem = (await response.json()) as Problem;
  } catch {
    // not JSON: the status says it
  }
  if (response.status === 401) endSession("expired");
  return new ApiError(
    response.status,
    problem.detail ?? problem.title ?? `${response.status} ${response.statusText}`,
    problem.request_id ?? requestId,
    problem.errors ?? [],
  );
}

export interface RequestOptions {
  method?: string;
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export async function api<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json", ...authorization() };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  let response: Response;
  try {
    response = await fetch(`/api/v1${path}`, {
      method: options.method ?? "GET",
      headers: { ...headers, ...options.headers },
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: options.signal,
    });
  } catch (error) {
    if (options.signal?.aborted) throw error;
    throw new ApiError(0, `The console server could not be reached (${String(error)}).`, null);
  }
  if (!response.ok) throw await problemOf(response);
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

/** A query string of the values that are set. */
export function query(values: Record<string, string | undefined | null>): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(values)) {
    if (value) params.set(name, value);
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}
