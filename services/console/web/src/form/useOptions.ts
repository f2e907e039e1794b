/**
 * A select field's options: the panel's own, or fetched live from the field's options_url with
 * the values of the fields it depends on. A change of those values fetches again after a short
 * pause (typing does not send a request per key); until the new options arrive the old ones
 * are shown marked stale, and an answer to an older request is ignored.
 */
import { useEffect, useState } from "react";
import { api } from "../api/client";
import type { Option, Options } from "../api/types";

export const OPTIONS_DEBOUNCE_MS = 300;

export interface OptionsState {
  options: Option[];
  loading: boolean;
  /** The options shown are not for the current dependency values (or the source was down). */
  stale: boolean;
  error: unknown;
  /** Dependencies without a value yet: nothing to fetch. */
  missing: string[];
  retry: () => void;
}

export function useOptions(
  optionsUrl: string | null,
  fixed: Option[] | null,
  dependencies: Record<string, unknown>,
): OptionsState {
  const [options, setOptions] = useState<Option[]>(fixed ?? []);
  const [loading, setLoading] = useState(optionsUrl !== null);
  const [stale, setStale] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [attempt, setAttempt] = useState(0);
  const missing = Object.entries(dependencies)
    .filter(([, value]) => value === undefined || value === null || value === "")
    .map(([name]) => name);
  const queryText = new URLSearchParams(
    Object.entries(dependencies).map(([name, value]) => [name, String(value ?? "")]),
  ).toString();

  useEffect(() => {
    if (optionsUrl === null) return;
    if (missing.length) {
      setOptions([]);
      setLoading(false);
      setStale(false);
      setError(null);
      return;
    }
    const abort = new AbortController();
    setLoading(true);
    setStale(true);
    const timer = window.setTimeout(() => {
      const path = optionsUrl.replace(/^\/api\/v1/, "") + (queryText ? `?${queryText}` : "");
      api<Options>(path, { signal: abort.signal }).then(
        (answer) => {
          setOptions(answer.options);
          setStale(Boolean(answer.stale));
          setError(null);
          setLoading(false);
        },
        (failure: unknown) => {
          if (abort.signal.aborted) return;
          setError(failure);
          setLoading(false);
        },
      );
    }, OPTIONS_DEBOUNCE_MS);
    return () => {
      window.clearTimeout(timer);
      abort.abort();
    };
    // `missing` follows queryText, which is listed
  }, [optionsUrl, queryText, attempt]);

  return { options, loading, stale, error, missing, retry: () => setAttempt((n) => n + 1) };
}
