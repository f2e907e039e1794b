/** A half-filled form survives a reload or a sign-in after expiry: kept in sessionStorage
 * (this tab only), secret fields left out, dropped once submitted. A draft is its user's
 * (tenant and subject): another user signing in to the tab never sees it, and signing out
 * drops them all. */
import { currentSession } from "../auth/session";

type Values = Record<string, unknown>;

const PREFIX = "console:draft:";

function key(panelId: string): string {
  const session = currentSession();
  return `${PREFIX}${JSON.stringify([session?.tenant, session?.subject, panelId])}`;
}

export function loadDraft(panelId: string): Values | undefined {
  const text = window.sessionStorage.getItem(key(panelId));
  if (!text) return undefined;
  try {
    return JSON.parse(text) as Values;
  } catch {
    return undefined;
  }
}

export function saveDraft(panelId: string, values: Values, secrets: string[]): void {
  const kept = Object.fromEntries(Object.entries(values).filter(([name]) => !secrets.includes(name)));
  window.sessionStorage.setItem(key(panelId), JSON.stringify(kept));
}

export function dropDraft(panelId: string): void {
  window.sessionStorage.removeItem(key(panelId));
}

export function dropAllDrafts(): void {
  const drafts = Array.from({ length: window.sessionStorage.length }, (_, index) => window.sessionStorage.key(index));
  for (const name of drafts) if (name?.startsWith(PREFIX)) window.sessionStorage.removeItem(name);
}
