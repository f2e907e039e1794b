import {
  lazy,
  Suspense,
  useEffect,
  useRef,
  useSyncExternalStore,
  type ComponentType,
  type ReactNode,
  type RefObject,
} from "react";
import { currentSession, endSession, hasRole, subscribe, type Role } from "./auth/session";
import type { AuthConfig } from "./config";
import { useConfig } from "./configContext";
import { dropAllDrafts } from "./form/drafts";
import { CatalogPage } from "./pages/CatalogPage";
import { ExecutionPage } from "./pages/ExecutionPage";
import { ExecutionsPage } from "./pages/ExecutionsPage";
import { MySubmissionsPage } from "./pages/MySubmissionsPage";
import { SignInPage } from "./pages/SignInPage";
import { SubmissionPage } from "./pages/SubmissionPage";
import { Link, match, useLocation } from "./router";

/** A page of a chunk loaded on first use. */
// (any props: each page has its own, which lazy() keeps)
/** Signing out leaves nothing of the user's in the tab: their half-filled forms go too; and
 * with OpenID Connect the provider's session ends as well. */
function signOut(auth: AuthConfig): void {
  dropAllDrafts();
  endSession("signed-out");
  if (auth.mode === "oidc") {
    void import("./auth/oidc")
      .then(({ oidcSignOut }) => oidcSignOut(auth))
      .catch((error: unknown) => console.warn("signing out at the identity provider failed", error));
  }
}

function lazyPage<M extends Record<K, ComponentType<any>>, K extends string>(load: () => Promise<M>, name: K) {
  return lazy(() => load().then((module) => ({ default: module[name] })));
}

// The form renderer (react-jsonschema-form, ajv) is most of the code: loaded with the first
// form. The operators' pages and the admins' are a chunk each.
const panelPage = () => import("./pages/PanelPage");
const operator = () => import("./pages/operator");
const admin = () => import("./pages/admin");
const PanelPage = lazyPage(panelPage, "PanelPage");
const QueuesPage = lazyPage(operator, "QueuesPage");
const DeadLettersPage = lazyPage(operator, "DeadLettersPage");
const ApprovalsPage = lazyPage(operator, "ApprovalsPage");
const SchedulesPage = lazyPage(operator, "SchedulesPage");
const TemplatesPage = lazyPage(admin, "TemplatesPage");
const TemplatePage = lazyPage(admin, "TemplatePage");
const NewPanelPage = lazyPage(admin, "NewPanelPage");
const EditPanelPage = lazyPage(admin, "EditPanelPage");
const DataSourcesPage = lazyPage(admin, "DataSourcesPage");
const DataSourcePage = lazyPage(admin, "DataSourcePage");
const SecretsPage = lazyPage(admin, "SecretsPage");
const ApiKeysPage = lazyPage(admin, "ApiKeysPage");
const AuditPage = lazyPage(admin, "AuditPage");
const WebhooksPage = lazyPage(admin, "WebhooksPage");

const ROUTES: [string, (params: Record<string, string>, address: URL) => ReactNode][] = [
  ["/", () => <CatalogPage />],
  ["/panels/:id", ({ id }) => <PanelPage key={id} panelId={id} />],
  ["/submissions", () => <MySubmissionsPage />],
  ["/submissions/:id", ({ id }) => <SubmissionPage key={id} submissionId={id} />],
  ["/executions", () => <ExecutionsPage />],
  ["/executions/:id", ({ id }) => <ExecutionPage key={id} executionId={id} />],
  ["/approvals", () => <ApprovalsPage />],
  ["/schedules", () => <SchedulesPage />],
  ["/queues", () => <QueuesPage />],
  ["/queues/:name", ({ name }) => <DeadLettersPage key={name} queue={name} />],
  ["/admin/templates", () => <TemplatesPage />],
  ["/admin/templates/:id", ({ id }) => <TemplatePage key={id} templateId={id} />],
  ["/admin/panels/new", (_, address) => <NewPanelPage templateSlug={address.searchParams.get("template") ?? ""} />],
  ["/admin/panels/:id/edit", ({ id }) => <EditPanelPage key={id} panelId={id} />],
  ["/admin/datasources", () => <DataSourcesPage />],
  ["/admin/datasources/:id", ({ id }) => <DataSourcePage key={id} sourceId={id} />],
  ["/admin/secrets", () => <SecretsPage />],
  ["/admin/api-keys", () => <ApiKeysPage />],
  ["/admin/webhooks", () => <WebhooksPage />],
  ["/admin/audit", () => <AuditPage />],
];

// (address, label, the least role that sees it)
const NAVIGATION: [string, string, Role][] = [
  ["/", "Panels", "viewer"],
  ["/submissions", "My submissions", "viewer"],
  ["/executions", "Runs", "viewer"],
  ["/approvals", "Approvals", "operator"],
  ["/schedules", "Schedules", "viewer"],
  ["/queues", "Queues", "admin"],
  ["/admin/templates", "Templates", "admin"],
  ["/admin/datasources", "Data sources", "admin"],
  ["/admin/secrets", "Secrets", "admin"],
  ["/admin/api-keys", "API keys", "admin"],
  ["/admin/webhooks", "Webhooks", "admin"],
  ["/admin/audit", "Audit", "admin"],
];

function page(address: URL): ReactNode {
  const path = address.pathname;
  for (const [pattern, render] of ROUTES) {
    const params = match(pattern, path);
    if (params) return render(params, address);
  }
  return (
    <section>
      <h1>Not found</h1>
      <p>
        Nothing lives at <code>{path}</code>. <Link href="/">Back to the panels</Link>.
      </p>
    </section>
  );
}

/** After a move to another page, focus goes to its content (as a page load would put it at
 * the top), so keyboard and screen reader users start there, not on a link now gone. */
function useFocusOnNavigation(path: string): RefObject<HTMLElement | null> {
  const main = useRef<HTMLElement>(null);
  const first = useRef(true);
  useEffect(() => {
    if (first.current) first.current = false;
    else main.current?.focus();
  }, [path]);
  return main;
}

export function App() {
  const config = useConfig();
  const session = useSyncExternalStore(subscribe, currentSession);
  const location = useLocation();
  const main = useFocusOnNavigation(location.pathname);
  if (!session) return <SignInPage />;
  const current = (href: string) =>
    href === "/"
      ? location.pathname === "/" || location.pathname.startsWith("/panels")
      : location.pathname.startsWith(href);
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <span className="brand">Operations console</span>
        <nav aria-label="Main">
          <ul>
            {NAVIGATION.filter(([, , role]) => hasRole(session, role)).map(([href, label]) => (
              <li key={href}>
                <Link href={href} aria-current={current(href) ? "page" : undefined}>
                  {label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <span className="who">
          {session.subject} ({session.roles.join(", ")}, {session.tenant})
          <button type="button" className="link" onClick={() => signOut(config.auth)}>
            Sign out
          </button>
        </span>
      </header>
      <main id="main" tabIndex={-1} ref={main}>
        <Suspense fallback={<p aria-busy="true">Loading…</p>}>{page(location)}</Suspense>
      </main>
    </>
  );
}
