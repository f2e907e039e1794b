/** Data sources: the list, each tested on demand (the upstream's status, its raw excerpt and
 * the options mapped from it), a new one, and a page to change one. */
import { api, type Page } from "../../api/client";
import { DataTable } from "../../components/DataTable";
import { ListState } from "../../components/ListState";
import { ProblemAlert } from "../../components/ProblemAlert";
import { Link, navigate } from "../../router";
import { useResource } from "../../useResource";
import { DataSourceEditor, SourceTester, type DataSource } from "./DataSourceEditor";

export function DataSourcesPage() {
  const sources = useResource((signal) => api<Page<DataSource>>("/datasources?limit=200", { signal }), []);
  const items = sources.data?.items ?? [];
  return (
    <section aria-labelledby="sources-title">
      <h1 id="sources-title">Data sources</h1>
      <ListState resource={sources} count={items.length} what="The data sources" empty="No data source yet." />
      {items.length ? (
        <DataTable label="Data sources" columns={["Source", "Kind", "Endpoint", "Test"]}>
          {items.map((source) => (
            <tr key={source.id}>
              <th scope="row">
                <Link href={`/admin/datasources/${source.id}`}>{source.name}</Link> <code>{source.slug}</code>
              </th>
              <td>{source.source_type}</td>
              <td>
                <code>{source.endpoint_url ?? "—"}</code>
              </td>
              <td>
                <SourceTester source={source} />
              </td>
            </tr>
          ))}
        </DataTable>
      ) : null}
      <DataSourceEditor onSaved={(created) => navigate(`/admin/datasources/${created.id}`)} />
    </section>
  );
}

export function DataSourcePage({ sourceId }: { sourceId: string }) {
  const source = useResource((signal) => api<DataSource>(`/datasources/${sourceId}`, { signal }), [sourceId]);
  if (source.error) return <ProblemAlert error={source.error} title="The data source could not be loaded" />;
  if (!source.data) return <p aria-busy="true">Loading the data source…</p>;
  const data = source.data;
  return (
    <section aria-labelledby="source-title">
      <h1 id="source-title">{data.name}</h1>
      <p>
        <code>{data.slug}</code>, {data.source_type}
        {data.endpoint_url ? (
          <>
            : <code>{data.endpoint_url}</code>
          </>
        ) : null}
      </p>
      <SourceTester source={data} />
      <DataSourceEditor source={data} onSaved={source.reload} />
    </section>
  );
}
