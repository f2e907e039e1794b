/** What the console server tells the app (GET /console-config.json). */
export type AuthConfig =
  { mode: "development" } | { mode: "oidc"; authority: string; client_id: string; scope: string };

export interface ConsoleConfig {
  environment: string;
  auth: AuthConfig;
  jaeger_url: string | null;
}

export async function loadConfig(): Promise<ConsoleConfig> {
  const response = await fetch("/console-config.json", { cache: "no-store" });
  if (!response.ok) throw new Error(`console-config.json: ${response.status}`);
  return (await response.json()) as ConsoleConfig;
}
