/** A half-filled form survives a reload or a sign-in after expiry: kept in sessionStorage
 * (this tab only), secret fields left out, dropped once submitted. */
type Values = Record<string, unknown>;

const key = (panelId: string) => `console:draft:${panelId}`;

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
