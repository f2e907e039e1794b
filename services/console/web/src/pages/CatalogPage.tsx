/** The panels the signed-in person may run, by category, with a search. */
import { useState } from "react";
import { api, query, type Page } from "../api/client";
import type { Panel } from "../api/types";
import { currentSession, hasRole, mayRun } from "../auth/session";
import { ProblemAlert } from "../components/ProblemAlert";
import { Link } from "../router";
import { useResource } from "../useResource";

const UNCATEGORIZED = "Other";

export function CatalogPage() {
  const [search, setSearch] = useState("");
  const [category, setCategory] = useState("");
  const panels = useResource(
    (signal) => api<Page<Panel>>(`/panels${query({ active: "true", limit: "200", search })}`, { signal }),
    [search],
  );
  const session = currentSession();
  // Viewers see what exists (read-only); others only what they may run.
  const visible = (panels.data?.items ?? []).filter(
    (panel) => !hasRole(session, "operator") || mayRun(session, panel.allowed_roles, panel.allowed_groups),
  );
  const categories = [...new Set(visible.map((panel) => panel.category || UNCATEGORIZED))].sort();
  const shown = visible.filter((panel) => !category || (panel.category || UNCATEGORIZED) === category);
  const grouped = categories
    .filter((name) => !category || name === category)
    .map((name) => [name, shown.filter((panel) => (panel.category || UNCATEGORIZED) === name)] as const);

  return (
    <section aria-labelledby="catalog-title">
      <h1 id="catalog-title">Panels</h1>
      <form className="filters" role="search" onSubmit={(event) => event.preventDefault()}>
        <label>
          Search
          <input type="search" value={search} onChange={(event) => setSearch(event.target.value)} />
        </label>
        <label>
          Category
          <select value={category} onChange={(event) => setCategory(event.target.value)}>
            <option value="">All</option>
            {categories.map((name) => (
              <option key={name}>{name}</option>
            ))}
          </select>
        </label>
      </form>
      {panels.error ? <ProblemAlert error={panels.error} title="The panels could not be loaded" /> : null}
      {panels.loading && !panels.data ? <p aria-busy="true">Loading panels…</p> : null}
      {panels.data && shown.length === 0 ? (
        <p className="empty">{search ? `No panel matches “${search}”.` : "No panel is available to you yet."}</p>
      ) : null}
      {grouped.map(([name, items]) => (
        <section key={name} aria-labelledby={`category-${name}`}>
          <h2 id={`category-${name}`}>{name}</h2>
          <ul className="cards">
            {items.map((panel) => (
              <li key={panel.id} className="card">
                <Link href={`/panels/${panel.id}`}>{panel.title}</Link>
                {panel.description ? <p>{panel.description}</p> : null}
                {panel.tags.length ? (
                  <ul className="tags" aria-label="Tags">
                    {panel.tags.map((tag) => (
                      <li key={tag}>{tag}</li>
                    ))}
                  </ul>
                ) : null}
              </li>
            ))}
          </ul>
        </section>
      ))}
    </section>
  );
}
