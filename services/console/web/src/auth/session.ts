/**
 * Who is signed in. The token lives in this module's memory only (never in localStorage or
 * sessionStorage): a reload signs in again. When the API answers 401 the session ends with
 * reason "expired" and the app shows the sign-in in place of the page, which keeps the page's
 * address, so the same page (and its saved draft) comes back after signing in.
 */
export type Role = "viewer" | "operator" | "admin";

export interface Session {
  token: string;
  subject: string;
  tenant: string;
  roles: Role[];
  groups: string[];
}

export type SignedOutReason = "signed-out" | "expired";

let current: Session | null = null;
let reason: SignedOutReason = "signed-out";
let expiryTimer: number | undefined;
const listeners = new Set<() => void>();

function notify(): void {
  for (const listener of listeners) listener();
}

export function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function currentSession(): Session | null {
  return current;
}

export function signedOutReason(): SignedOutReason {
  return reason;
}

export function token(): string | null {
  return current?.token ?? null;
}

// The longest delay a browser timer takes (2^31 - 1 ms, 24.8 days): a longer one fires at once.
const LONGEST_TIMER_MS = 2 ** 31 - 1;

/** Ends the session at ``deadline`` (ms since the epoch), in as many waits as it takes. */
function expireAt(deadline: number): void {
  const left = deadline - Date.now();
  if (left <= 0) endSession("expired");
  else expiryTimer = window.setTimeout(() => expireAt(deadline), Math.min(left, LONGEST_TIMER_MS));
}

export function startSession(session: Session, expiresInSeconds: number | undefined): void {
  current = session;
  window.clearTimeout(expiryTimer);
  if (expiresInSeconds !== undefined) expireAt(Date.now() + expiresInSeconds * 1000);
  notify();
}

export function endSession(why: SignedOutReason): void {
  if (current === null) return;
  window.clearTimeout(expiryTimer);
  current = null;
  reason = why;
  notify();
}

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

/** The role or a higher one (an admin is an operator too), as the services decide. */
export function hasRole(session: Session | null, role: Role): boolean {
  return (session?.roles ?? []).some((held) => RANK[held] >= RANK[role]);
}

/** A panel's own restriction on top of the operator role (the services' may_run). */
export function mayRun(session: Session | null, allowedRoles: string[], allowedGroups: string[]): boolean {
  if (!hasRole(session, "operator")) return false;
  if (allowedRoles.length === 0 && allowedGroups.length === 0) return true;
  return (
    allowedRoles.some((role) => role in RANK && hasRole(session, role as Role)) ||
    (session?.groups ?? []).some((group) => allowedGroups.includes(group))
  );
}
