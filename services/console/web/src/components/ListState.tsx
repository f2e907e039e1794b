import type { Resource } from "../useResource";
import { ProblemAlert } from "./ProblemAlert";

interface Props {
  resource: Resource<unknown>;
  /** How many items it holds now. */
  count: number;
  /** What is listed, as the start of a sentence ("The runs"). */
  what: string;
  /** What to say when there is none. */
  empty: string;
}

/** What a list says besides its items: why it could not load, that it is loading, or that
 * there is nothing once it has loaded. */
export function ListState({ resource, count, what, empty }: Props) {
  if (resource.error) return <ProblemAlert error={resource.error} title={`${what} could not be loaded`} />;
  if (resource.data === undefined) return resource.loading ? <p aria-busy="true">Loading…</p> : null;
  return count === 0 ? <p className="empty">{empty}</p> : null;
}
