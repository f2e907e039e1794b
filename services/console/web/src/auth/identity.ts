/** Who a token belongs to, as the services see it (GET /api/v1/auth/whoami). */
import { problemOf } from "../api/client";
import type { Session } from "./session";

export async function sessionFor(accessToken: string): Promise<Session> {
  const response = await fetch("/api/v1/auth/whoami", {
    headers: { Authorization: `Bearer ${accessToken}`, Accept: "application/json" },
  });
  if (!response.ok) throw await problemOf(response);
  const who = (await response.json()) as Omit<Session, "token"> & { sub: string };
  return { token: accessToken, subject: who.sub, tenant: who.tenant, roles: who.roles, groups: who.groups };
}
