import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { devSignIn, requestedDevRole } from "./auth/devSignIn";
import { loadConfig, type ConsoleConfig } from "./config";
import { ConfigContext } from "./configContext";
import { navigate } from "./router";
import "./styles.css";

/** Before the first render: a sign-in the address asks for (development) or completes (OIDC). */
async function signInFromAddress(config: ConsoleConfig): Promise<void> {
  if (config.auth.mode === "oidc") {
    const { completeOidcSignIn } = await import("./auth/oidc");
    const returnTo = await completeOidcSignIn(config.auth);
    if (returnTo) navigate(returnTo, true);
    return;
  }
  const role = requestedDevRole();
  if (role) {
    navigate(window.location.pathname + window.location.search, true); // the hash is spent
    await devSignIn(role);
  }
}

async function start(): Promise<void> {
  const root = createRoot(document.getElementById("root")!);
  let config: ConsoleConfig;
  try {
    config = await loadConfig();
  } catch (error) {
    root.render(<p role="alert">The console could not load its configuration: {String(error)}</p>);
    return;
  }
  try {
    await signInFromAddress(config);
  } catch (error) {
    console.warn("sign-in from the address failed", error);
  }
  root.render(
    <StrictMode>
      <ConfigContext.Provider value={config}>
        <App />
      </ConfigContext.Provider>
    </StrictMode>,
  );
}

void start();
