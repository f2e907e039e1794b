/** The development sign-in: the console server mints a token (it exists only in development). */
import { problemOf } from "../api/client";
import { sessionFor } from "./identity";
import { startSession, type Role } from "./session";

/** `#dev-sign-in=<role>`: the address `make run` prints signs in at once. */
export function requestedDevRole(): Role | null {
  const match = /^#dev-sign-in(?:=(viewer|operator|admin))?$/.exec(window.location.hash);
  return match ? ((match[1] as Role | undefined) ?? "admin") : null;
}

export async function devSignIn(role: Role): Promise<void> {
  const response = await fetch("/console/dev-sign-in", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ role }),
  });
  if (!response.ok) throw await problemOf(response);
  const answer = (await response.json()) as { access_token: string; expires_in: number };
  startSession(await sessionFor(answer.access_token), answer.expires_in);
}
