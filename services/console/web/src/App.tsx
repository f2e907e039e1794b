import { lazy, Suspense, useSyncExternalStore, type ReactNode } from "react";
import { currentSession, endSession, hasRole, subscribe, type Role } from "./auth/session";
import { CatalogPage } from "./pages/CatalogPage";
import { ExecutionPage } from "./pages/ExecutionPage";
import { ExecutionsPage } from "./pages/ExecutionsPage";
import { MySubmissionsPage } from "./pages/MySubmissionsPage";
import { SignInPage } from "./pages/SignInPage";
import { SubmissionPage } from "./pages/SubmissionPage";
import { Link, match, useLocation } from "./router";

// The form renderer (react-jsonschema-form, ajv) is most of the code: loaded with the first
// form. The operators' pages are a chunk of their own.
const PanelPage = lazy(() => import("./pages/PanelPage").then((module) => ({ default: module.PanelPage })));
const operator = () => import("./pages/operator");
const QueuesPage = lazy(() => operator().then((module) => ({ default: module.QueuesPage })));
const DeadLettersPage = lazy(() => operator().then((module) => ({ default: module.DeadLettersPage })));
const ApprovalsPage = lazy(() => operator().then((module) => ({ default: module.ApprovalsPage })));
const SchedulesPage = lazy(() => operator().then((module) => ({ default: module.SchedulesPage })));

const ROUTES: [string, (params: Record<string, string>) => ReactNode][] = [
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
];

// (address, label, the least role that sees it)
const NAVIGATION: [string, string, Role][] = [
  ["/", "Panels", "viewer"],
  ["/submissions", "My submissions", "viewer"],
  ["/executions", "Runs", "viewer"],
  ["/approvals", "Approvals", "operator"],
  ["/schedules", "Schedules", "viewer"],
  ["/queues", "Queues", "admin"],
];

function page(path: string): ReactNode {
  for (const [pattern, render] of ROUTES) {
    const params = match(pattern, path);
    if (params) return render(params);
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

export function App() {
  const session = useSyncExternalStore(subscribe, currentSession);
  const location = useLocation();
  if (!session) return <SignInPage />;
  const current = (href: string) =>
    href === "/" ? location.pathname === "/" || location.pathname.startsWith("/panels") : location.pathname.startsWith(href);
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
          <button type="button" className="link" onClick={() => endSession("signed-out")}>
            Sign out
          </button>
        </span>
      </header>
      <main id="main" tabIndex={-1}>
        <Suspense fallback={<p aria-busy="true">Loading…</p>}>{page(location.pathname)}</Suspense>
      </main>
    </>
  );
}
