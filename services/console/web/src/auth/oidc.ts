/**
 * Production sign-in: OpenID Connect authorization code with PKCE (oidc-client-ts). The user,
 * its token included, is kept in memory only; sessionStorage holds just the PKCE verifier and
 * state of a sign-in under way, as the redirect needs them. Loaded on demand: the development
 * sign-in never downloads it.
 */
import { InMemoryWebStorage, UserManager, WebStorageStateStore } from "oidc-client-ts";
import type { AuthConfig } from "../config";
import { sessionFor } from "./identity";
import { startSession } from "./session";

const CALLBACK_PATH = "/signin-callback";

type OidcConfig = Extract<AuthConfig, { mode: "oidc" }>;

// One for the page's life: the signed-in user it keeps in memory holds the ID token that
// signing out at the provider names.
let shared: UserManager | undefined;

function manager(config: OidcConfig): UserManager {
  shared ??= new UserManager({
    authority: config.authority,
    client_id: config.client_id,
    scope: config.scope,
    redirect_uri: `${window.location.origin}${CALLBACK_PATH}`,
    post_logout_redirect_uri: `${window.location.origin}/`,
    response_type: "code",
    userStore: new WebStorageStateStore({ store: new InMemoryWebStorage() }),
    stateStore: new WebStorageStateStore({ store: window.sessionStorage }),
  });
  return shared;
}

/** Leaves for the identity provider; comes back to the page it left (its draft is kept). */
export async function oidcSignIn(config: OidcConfig): Promise<void> {
  const returnTo = window.location.pathname + window.location.search;
  await manager(config).signinRedirect({ state: { returnTo } });
}

/** On the callback address: finishes the sign-in and returns where the person was going. */
export async function completeOidcSignIn(config: OidcConfig): Promise<string | null> {
  if (window.location.pathname !== CALLBACK_PATH) return null;
  const user = await manager(config).signinRedirectCallback();
  startSession(await sessionFor(user.access_token), user.expires_in);
  return (user.state as { returnTo?: string } | undefined)?.returnTo ?? "/";
}

/** Ends the session at the provider too, when it has an end-session endpoint: otherwise its
 * own session outlives the console's, and the next "Sign in" in this browser is let in as the
 * same person without a password. The provider sends the browser back to the console. */
export async function oidcSignOut(config: OidcConfig): Promise<void> {
  const users = manager(config);
  if (await users.metadataService.getEndSessionEndpoint()) await users.signoutRedirect();
}
