/** A queue's dead letters, peeked: why each failed; replayed after a dry run shows what
 * would move, or deleted after a confirmation. */
import { useState } from "react";
import { api, type Page } from "../../api/client";
import type { DeadLetter, QueueAction } from "../../api/types";
import { ListState } from "../../components/ListState";
import { ProblemAlert } from "../../components/ProblemAlert";
import { DataTable } from "../../components/DataTable";
import { useAction } from "../../useAction";
import { useResource } from "../../useResource";

type Pending = { verb: "replay"; preview: QueueAction } | { verb: "delete" };

export function DeadLettersPage({ queue }: { queue: string }) {
  const letters = useResource(
    (signal) => api<Page<DeadLetter>>(`/queues/${queue}/dead-letters?limit=200`, { signal }),
    [queue],
  );
  const [selected, setSelected] = useState<string[]>([]);
  const [pending, setPending] = useState<Pending | null>(null);
  const [outcome, setOutcome] = useState<QueueAction | null>(null);
  const action = useAction();
  const items = letters.data?.items ?? [];

  function toggle(id: string): void {
    setPending(null);
    setSelected((ids) => (ids.includes(id) ? ids.filter((other) => other !== id) : [...ids, id]));
  }

  const post = (verb: "replay" | "delete", extra: Record<string, boolean>) =>
    api<QueueAction>(`/queues/${queue}/dead-letters/${verb}`, {
      method: "POST",
      body: { message_ids: selected, ...extra },
    });

  const dryRun = () =>
    action.run(async () => {
      setOutcome(null);
      setPending({ verb: "replay", preview: await post("replay", { dry_run: true }) });
    });

  const confirm = () =>
    action.run(async () => {
      if (!pending) return;
      const done = await post(pending.verb, pending.verb === "delete" ? { confirm: true } : {});
      setOutcome(done);
      setPending(null);
      setSelected([]);
      letters.reload();
    });

  return (
    <section aria-labelledby="dlq-title">
      <h1 id="dlq-title">Dead letters of {queue}</h1>
      {action.problem ? <ProblemAlert error={action.problem} /> : null}
      {outcome ? (
        <p role="status" className="note">
          {outcome.action === "replay" ? "Replayed" : "Deleted"} {outcome.done} of {outcome.matched} ({outcome.status}).
        </p>
      ) : null}
      <ListState
        resource={letters}
        count={items.length}
        what="The dead letters"
        empty="No dead letter: nothing failed here."
      />
      {items.length ? (
        <>
          <div className="actions">
            <button type="button" disabled={!selected.length || action.busy} onClick={() => void dryRun()}>
              Replay selected (dry run first)
            </button>
            <button
              type="button"
              className="danger"
              disabled={!selected.length || action.busy}
              onClick={() => setPending({ verb: "delete" })}
            >
              Delete selected…
            </button>
          </div>
          {pending ? (
            <div className="confirm" role="group" aria-label="Confirm">
              <p>
                {pending.verb === "replay"
                  ? `Dry run: ${pending.preview.matched} message(s) would go back to ${queue}.`
                  : `Delete ${selected.length} message(s) for good? This cannot be undone.`}
              </p>
              <button
                type="button"
                className={pending.verb === "delete" ? "danger" : "primary"}
                disabled={action.busy}
                onClick={() => void confirm()}
              >
                {pending.verb === "replay" ? "Confirm the replay" : "Delete them"}
              </button>{" "}
              <button type="button" onClick={() => setPending(null)}>
                Cancel
              </button>
            </div>
          ) : null}
          <DataTable label="Dead letters" columns={["Select", "Failed", "Event", "Receives", "Reason"]}>
            {items.map((letter) => (
              <tr key={letter.message_id}>
                <td>
                  <input
                    type="checkbox"
                    aria-label={`Select message ${letter.message_id}`}
                    checked={selected.includes(letter.message_id)}
                    onChange={() => toggle(letter.message_id)}
                  />
                </td>
                <td>{new Date(letter.failed_at).toLocaleString()}</td>
                <td>
                  {letter.type ?? "not an event"}
                  <details>
                    <summary>Content</summary>
                    <pre>{letter.body ?? JSON.stringify(letter.data, null, 2)}</pre>
                  </details>
                </td>
                <td>{letter.receive_count}</td>
                <td>{letter.reason ?? "—"}</td>
              </tr>
            ))}
          </DataTable>
        </>
      ) : null}
    </section>
  );
}
