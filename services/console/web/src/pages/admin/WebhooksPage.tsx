/** Webhook subscriptions: the list, a new one (its signing secret shown once), and each one's
 * deliveries with every attempt (status code, latency, the response's excerpt or the error),
 * a delivery sent again on demand (the open list is asked again every few seconds). */
import { useState, type FormEvent } from "react";
import { api, type Page } from "../../api/client";
import { DataTable } from "../../components/DataTable";
import { ListState } from "../../components/ListState";
import { shown } from "../../components/LogMessage";
import { ProblemAlert } from "../../components/ProblemAlert";
import { TextField } from "../../components/TextField";
import { useAction } from "../../useAction";
import { usePolling } from "../../usePolling";
import { useResource } from "../../useResource";

const EVENT_TYPES = [
  "operation.execution.finished",
  "operation.execution.failed",
  "panel.submission.updated",
  "operation.approval.requested",
  "operation.approval.decided",
];

interface Webhook {
  id: string;
  url: string;
  description: string;
  event_types: string[];
  active: boolean;
  disabled_reason: string | null;
}

interface Attempt {
  number: number;
  trigger: string;
  outcome: string;
  status_code: number | null;
  latency_ms: number;
  response_excerpt: string | null;
  error: string | null;
  started_at: string;
}

interface Delivery {
  id: string;
  event_type: string;
  status: string;
  attempts: number;
  next_attempt_at: string | null;
  last_error: string | null;
  created_at: string;
  attempt_log: Attempt[];
}

function DeliveryItem({ webhook, delivery, changed }: { webhook: Webhook; delivery: Delivery; changed: () => void }) {
  const action = useAction();
  const resend = () =>
    action.run(async () => {
      await api(`/webhooks/${webhook.id}/deliveries/${delivery.id}/resend`, { method: "POST" });
      changed();
    });
  return (
    <li>
      <strong>{delivery.event_type}</strong> {delivery.status}, {delivery.attempts} attempt(s), {""}
      {new Date(delivery.created_at).toLocaleString()} <code>{delivery.id}</code>
      <button type="button" disabled={action.busy} onClick={() => void resend()}>
        Resend {delivery.event_type} delivery
      </button>
      {action.problem ? <ProblemAlert error={action.problem} title="The delivery was not sent again" /> : null}
      <ol aria-label={`Attempts of delivery ${delivery.id}`}>
        {delivery.attempt_log.map((attempt) => (
          <li key={attempt.number}>
            {attempt.trigger}: {attempt.outcome}
            {attempt.status_code !== null ? ` (${attempt.status_code})` : ""} in {Math.round(attempt.latency_ms)} ms
            {attempt.error ? `: ${attempt.error}` : ""}
            {attempt.response_excerpt ? <pre className="excerpt">{shown(attempt.response_excerpt)}</pre> : null}
          </li>
        ))}
      </ol>
    </li>
  );
}

function Deliveries({ webhook }: { webhook: Webhook }) {
  const deliveries = useResource(
    (signal) => api<Page<Delivery>>(`/webhooks/${webhook.id}/deliveries?limit=20`, { signal }),
    [webhook.id],
  );
  const items = deliveries.data?.items ?? [];
  // Attempts are made in the background: asked again while the list is open.
  usePolling(deliveries.reload, true);
  return (
    <div>
      <ListState resource={deliveries} count={items.length} what="The deliveries" empty="No delivery yet." />
      <ul aria-label={`Deliveries to ${webhook.url}`}>
        {items.map((delivery) => (
          <DeliveryItem key={delivery.id} webhook={webhook} delivery={delivery} changed={deliveries.reload} />
        ))}
      </ul>
    </div>
  );
}

function WebhookRow({ webhook }: { webhook: Webhook }) {
  const [open, setOpen] = useState(false);
  return (
    <tr>
      <th scope="row">
        <code>{webhook.url}</code>
        {webhook.description ? <div>{webhook.description}</div> : null}
      </th>
      <td>{webhook.event_types.join(", ")}</td>
      <td>{webhook.active ? "active" : `disabled${webhook.disabled_reason ? `: ${webhook.disabled_reason}` : ""}`}</td>
      <td>
        <button type="button" className="link" aria-expanded={open} onClick={() => setOpen(!open)}>
          {open ? "Hide the deliveries" : "Deliveries"}
        </button>
        {open ? <Deliveries webhook={webhook} /> : null}
      </td>
    </tr>
  );
}

export function WebhooksPage() {
  const webhooks = useResource((signal) => api<Page<Webhook>>("/webhooks?limit=200", { signal }), []);
  const [url, setUrl] = useState("");
  const [description, setDescription] = useState("");
  const [events, setEvents] = useState<string[]>(["operation.execution.finished"]);
  const [secret, setSecret] = useState<string | null>(null);
  const action = useAction();
  const items = webhooks.data?.items ?? [];
  function create(event: FormEvent): void {
    event.preventDefault();
    void action.run(async () => {
      const created = await api<Webhook & { secret: string }>("/webhooks", {
        method: "POST",
        body: { url, description, event_types: events },
      });
      setSecret(created.secret);
      setUrl("");
      setDescription("");
      webhooks.reload();
    });
  }
  return (
    <section aria-labelledby="webhooks-title">
      <h1 id="webhooks-title">Webhooks</h1>
      {secret ? (
        <div className="confirm" role="status">
          <p>Copy the signing secret now: it is shown this once.</p>
          <pre data-testid="new-secret">{secret}</pre>
          <button type="button" onClick={() => setSecret(null)}>
            I have copied it
          </button>
        </div>
      ) : null}
      <ListState resource={webhooks} count={items.length} what="The webhooks" empty="No webhook yet." />
      {items.length ? (
        <DataTable label="Webhooks" columns={["Endpoint", "Events", "State", "Deliveries"]}>
          {items.map((webhook) => (
            <WebhookRow key={webhook.id} webhook={webhook} />
          ))}
        </DataTable>
      ) : null}
      <form onSubmit={create} className="editor" aria-labelledby="new-webhook-title">
        <h2 id="new-webhook-title">New webhook</h2>
        <TextField label="URL" name="webhook-url" type="url" value={url} onChange={setUrl} required />
        <TextField label="Description" name="webhook-description" value={description} onChange={setDescription} />
        <fieldset>
          <legend>Events</legend>
          {EVENT_TYPES.map((type) => (
            <div className="field checkbox" key={type}>
              <input
                type="checkbox"
                id={`webhook-event-${type}`}
                checked={events.includes(type)}
                onChange={(event) =>
                  setEvents((all) => (event.target.checked ? [...all, type] : all.filter((each) => each !== type)))
                }
              />
              <label htmlFor={`webhook-event-${type}`}>{type}</label>
            </div>
          ))}
        </fieldset>
        {action.problem ? <ProblemAlert error={action.problem} title="The webhook was refused" /> : null}
        <button type="submit" className="primary" disabled={action.busy}>
          Create the webhook
        </button>
      </form>
    </section>
  );
}
