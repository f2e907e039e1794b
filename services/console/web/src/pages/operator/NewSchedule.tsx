/** A new schedule (admins): a template with its parameters or a panel with its form's data,
 * at each slot of a cron expression in a time zone or every so many seconds, with what to do
 * when a run is still going (overlap) and with slots missed while the platform was down
 * (misfire). Once created, its next fire times are shown. */
import { useState, type FormEvent } from "react";
import { api, type Page } from "../../api/client";
import type { Panel, Schedule, Template } from "../../api/types";
import { ProblemAlert } from "../../components/ProblemAlert";
import { TextField } from "../../components/TextField";
import { useAction } from "../../useAction";
import { useResource } from "../../useResource";
import { NextFires } from "./NextFires";

/** `name=value` lines as an object (values as typed: strings). */
function values(text: string): Record<string, string> {
  return Object.fromEntries(
    text
      .split("\n")
      .map((line) => line.trim())
      .filter(Boolean)
      .map((line) => {
        const [name, ...rest] = line.split("=");
        return [name.trim(), rest.join("=").trim()];
      }),
  );
}

export function NewSchedule({ created }: { created: () => void }) {
  const templates = useResource((signal) => api<Page<Template>>("/templates?limit=200", { signal }), []);
  const panels = useResource((signal) => api<Page<Panel>>("/panels?active=true&limit=200", { signal }), []);
  const [name, setName] = useState("");
  const [target, setTarget] = useState<"template" | "panel">("template");
  const [templateSlug, setTemplateSlug] = useState("");
  const [panelId, setPanelId] = useState("");
  const [given, setGiven] = useState("");
  const [cadence, setCadence] = useState<"cron" | "interval">("cron");
  const [cron, setCron] = useState("");
  const [timezone, setTimezone] = useState("UTC");
  const [interval, setIntervalSeconds] = useState("");
  const [overlap, setOverlap] = useState("skip");
  const [misfire, setMisfire] = useState("skip");
  const [made, setMade] = useState<Schedule>();
  const action = useAction();
  function create(event: FormEvent): void {
    event.preventDefault();
    setMade(undefined);
    const body: Record<string, unknown> = { name, overlap_policy: overlap, misfire_policy: misfire };
    if (target === "template") Object.assign(body, { template: templateSlug, parameters: values(given) });
    else Object.assign(body, { panel: panelId, data: values(given) });
    if (cadence === "cron") Object.assign(body, { cron, timezone });
    else body.interval_seconds = Number(interval);
    void action.run(async () => {
      setMade(await api<Schedule>("/schedules", { method: "POST", body }));
      created();
    });
  }
  return (
    <form onSubmit={create} className="editor" aria-labelledby="new-schedule-title">
      <h2 id="new-schedule-title">New schedule</h2>
      {templates.error ? <ProblemAlert error={templates.error} title="The templates could not be loaded" /> : null}
      {panels.error ? <ProblemAlert error={panels.error} title="The panels could not be loaded" /> : null}
      <TextField label="Name" name="schedule-name" value={name} onChange={setName} required />
      <fieldset>
        <legend>What it runs</legend>
        <div className="field checkbox">
          <input
            type="radio"
            id="schedule-target-template"
            name="schedule-target"
            checked={target === "template"}
            onChange={() => setTarget("template")}
          />
          <label htmlFor="schedule-target-template">A template</label>
        </div>
        <div className="field checkbox">
          <input
            type="radio"
            id="schedule-target-panel"
            name="schedule-target"
            checked={target === "panel"}
            onChange={() => setTarget("panel")}
          />
          <label htmlFor="schedule-target-panel">A panel</label>
        </div>
        {target === "template" ? (
          <div className="field">
            <label htmlFor="input-schedule-template">Template</label>
            <select
              id="input-schedule-template"
              value={templateSlug}
              required
              onChange={(event) => setTemplateSlug(event.target.value)}
            >
              <option value="">Choose a template</option>
              {templates.data?.items.map((each) => (
                <option key={each.id} value={each.slug}>
                  {each.name} ({each.slug})
                </option>
              ))}
            </select>
          </div>
        ) : (
          <div className="field">
            <label htmlFor="input-schedule-panel">Panel</label>
            <select
              id="input-schedule-panel"
              value={panelId}
              required
              onChange={(event) => setPanelId(event.target.value)}
            >
              <option value="">Choose a panel</option>
              {panels.data?.items.map((each) => (
                <option key={each.id} value={each.id}>
                  {each.title}
                </option>
              ))}
            </select>
          </div>
        )}
        <div className="field">
          <label htmlFor="input-schedule-values">{target === "template" ? "Parameters" : "Form data"}</label>
          <p className="hint" id="input-schedule-values-hint">
            One a line: <code>name=value</code>.
          </p>
          <textarea
            id="input-schedule-values"
            rows={2}
            value={given}
            aria-describedby="input-schedule-values-hint"
            onChange={(event) => setGiven(event.target.value)}
          />
        </div>
      </fieldset>
      <fieldset>
        <legend>When</legend>
        <div className="field checkbox">
          <input
            type="radio"
            id="schedule-cadence-cron"
            name="schedule-cadence"
            checked={cadence === "cron"}
            onChange={() => setCadence("cron")}
          />
          <label htmlFor="schedule-cadence-cron">On a cron expression</label>
        </div>
        <div className="field checkbox">
          <input
            type="radio"
            id="schedule-cadence-interval"
            name="schedule-cadence"
            checked={cadence === "interval"}
            onChange={() => setCadence("interval")}
          />
          <label htmlFor="schedule-cadence-interval">Every so many seconds</label>
        </div>
        {cadence === "cron" ? (
          <>
            <TextField
              label="Cron expression"
              name="schedule-cron"
              value={cron}
              onChange={setCron}
              hint="Five fields: minute hour day-of-month month day-of-week."
              required
            />
            <TextField
              label="Time zone"
              name="schedule-timezone"
              value={timezone}
              onChange={setTimezone}
              hint="An IANA name, like Europe/Paris."
              required
            />
          </>
        ) : (
          <TextField
            label="Interval (seconds)"
            name="schedule-interval"
            type="number"
            min={1}
            value={interval}
            onChange={setIntervalSeconds}
            required
          />
        )}
      </fieldset>
      <div className="field">
        <label htmlFor="input-schedule-overlap">When the previous run is still going</label>
        <select id="input-schedule-overlap" value={overlap} onChange={(event) => setOverlap(event.target.value)}>
          <option value="skip">skip the slot</option>
          <option value="allow">run anyway</option>
          <option value="queue_one">run it when the previous one ends (one waits at most)</option>
        </select>
      </div>
      <div className="field">
        <label htmlFor="input-schedule-misfire">Slots missed while the platform was down</label>
        <select id="input-schedule-misfire" value={misfire} onChange={(event) => setMisfire(event.target.value)}>
          <option value="skip">skip them</option>
          <option value="run_once">run the latest once</option>
        </select>
      </div>
      {action.problem ? <ProblemAlert error={action.problem} title="The schedule was refused" /> : null}
      <button type="submit" className="primary" disabled={action.busy}>
        Create the schedule
      </button>
      {made ? (
        <div role="status">
          <p>Created {made.name}; it fires next:</p>
          <NextFires schedule={made} />
        </div>
      ) : null}
    </form>
  );
}
