/** The select (and multi-select) widget: static options or live ones (see useOptions). */
import type { WidgetProps } from "@rjsf/utils";
import { ariaDescribedByIds } from "@rjsf/utils";
import { useContext, useEffect, type ChangeEvent } from "react";
import type { Option } from "../api/types";
import { ProblemAlert } from "../components/ProblemAlert";
import { FormValues } from "./FormValues";
import { useOptions } from "./useOptions";

interface ChoiceOptions {
  field: string;
  choices: Option[] | null;
  optionsUrl: string | null;
  dependsOn: string[];
}

export function ChoiceWidget(props: WidgetProps) {
  const { id, value, required, disabled, readonly, onChange, onBlur, onFocus, schema, rawErrors } = props;
  const { choices, optionsUrl, dependsOn } = props.options as unknown as ChoiceOptions;
  const values = useContext(FormValues);
  const dependencies = Object.fromEntries((dependsOn ?? []).map((name) => [name, values[name]]));
  const state = useOptions(optionsUrl ?? null, choices ?? null, dependencies);
  const multiple = schema.type === "array";
  const offered = new Set(state.options.map((option) => option.value));

  // A value the new options no longer offer is cleared, rather than submitted and refused.
  useEffect(() => {
    if (state.loading || state.stale || state.error || !optionsUrl) return;
    if (multiple && Array.isArray(value) && value.some((item) => !offered.has(String(item)))) {
      onChange(value.filter((item) => offered.has(String(item))));
    } else if (!multiple && value !== undefined && value !== "" && !offered.has(String(value))) {
      onChange(undefined);
    }
  }, [state.options, state.loading]);

  function changed(event: ChangeEvent<HTMLSelectElement>): void {
    if (multiple) onChange(Array.from(event.target.selectedOptions, (option) => option.value));
    else onChange(event.target.value === "" ? undefined : event.target.value);
  }

  const statusId = `${id}__options`;
  const waiting = state.missing.length > 0;
  return (
    <div className={state.stale ? "choice stale" : "choice"}>
      <select
        id={id}
        name={id}
        multiple={multiple}
        required={required}
        disabled={disabled || readonly || waiting}
        value={multiple ? ((value as string[] | undefined) ?? []) : ((value as string | undefined) ?? "")}
        onChange={changed}
        onBlur={() => onBlur(id, value)}
        onFocus={() => onFocus(id, value)}
        aria-busy={state.loading}
        aria-invalid={rawErrors && rawErrors.length > 0 ? true : undefined}
        aria-describedby={`${ariaDescribedByIds(id)} ${statusId}`}
      >
        {multiple ? null : <option value="">{waiting ? "—" : "Choose…"}</option>}
        {state.options.map((option) => (
          <option key={option.value} value={option.value}>
            {option.label}
          </option>
        ))}
      </select>
      <div id={statusId} className="choice-status" aria-live="polite">
        {waiting ? `Choose ${state.missing.join(", ")} first.` : null}
        {!waiting && state.loading ? "Loading options…" : null}
        {!waiting && !state.loading && state.stale ? "These options may be out of date." : null}
      </div>
      {state.error ? (
        <div className="choice-error">
          <ProblemAlert error={state.error} title="Options could not be loaded" />
          <button type="button" onClick={state.retry}>
            Try again
          </button>
        </div>
      ) : null}
    </div>
  );
}
