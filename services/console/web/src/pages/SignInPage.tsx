import { useState } from "react";
import { devSignIn } from "../auth/devSignIn";
import { signedOutReason, type Role } from "../auth/session";
import { ProblemAlert } from "../components/ProblemAlert";
import { useConfig } from "../configContext";

const ROLES: Role[] = ["admin", "operator", "viewer"];

export function SignInPage() {
  const config = useConfig();
  const [problem, setProblem] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  async function signIn(role: Role): Promise<void> {
    setBusy(true);
    setProblem(null);
    try {
      if (config.auth.mode === "oidc") {
        const { oidcSignIn } = await import("../auth/oidc");
        await oidcSignIn(config.auth);
      } else {
        await devSignIn(role);
      }
    } catch (error) {
      setProblem(error);
      setBusy(false);
    }
  }

  return (
    <main id="main" className="sign-in" aria-labelledby="sign-in-title">
      <h1 id="sign-in-title">Sign in to the operations console</h1>
      {signedOutReason() === "expired" ? (
        <p role="status" className="note">
          Your session has ended. Sign in again to go on: what you were filling in is kept.
        </p>
      ) : null}
      {problem ? <ProblemAlert error={problem} title="Signing in failed" /> : null}
      {config.auth.mode === "oidc" ? (
        <button type="button" className="primary" disabled={busy} onClick={() => void signIn("viewer")}>
          Sign in
        </button>
      ) : (
        <>
          <p>Development sign-in (no identity provider): choose a role.</p>
          <div className="actions">
            {ROLES.map((role) => (
              <button type="button" key={role} disabled={busy} onClick={() => void signIn(role)}>
                Sign in as {role}
              </button>
            ))}
          </div>
        </>
      )}
    </main>
  );
}
