import { devSignIn } from "../auth/devSignIn";
import { signedOutReason, type Role } from "../auth/session";
import { ProblemAlert } from "../components/ProblemAlert";
import { useConfig } from "../configContext";
import { useAction } from "../useAction";

const ROLES: Role[] = ["admin", "operator", "viewer"];

export function SignInPage() {
  const config = useConfig();
  const action = useAction();
  const auth = config.auth;

  return (
    <main id="main" className="sign-in" aria-labelledby="sign-in-title">
      <h1 id="sign-in-title">Sign in to the operations console</h1>
      {signedOutReason() === "expired" ? (
        <p role="status" className="note">
          Your session has ended. Sign in again to go on: what you were filling in is kept.
        </p>
      ) : null}
      {action.problem ? <ProblemAlert error={action.problem} title="Signing in failed" /> : null}
      {auth.mode === "oidc" ? (
        <button
          type="button"
          className="primary"
          disabled={action.busy}
          onClick={() =>
            void action.run(async () => {
              const { oidcSignIn } = await import("../auth/oidc");
              await oidcSignIn(auth); // leaves the page for the identity provider
            })
          }
        >
          Sign in
        </button>
      ) : (
        <>
          <p>Development sign-in (no identity provider): choose a role.</p>
          <div className="actions">
            {ROLES.map((role) => (
              <button
                type="button"
                key={role}
                disabled={action.busy}
                onClick={() => void action.run(() => devSignIn(role))}
              >
                Sign in as {role}
              </button>
            ))}
          </div>
        </>
      )}
    </main>
  );
}
