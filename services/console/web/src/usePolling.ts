import { useEffect } from "react";

export const POLL_MS = 1500;

/** Calls ``reload`` every POLL_MS while ``active``. */
export function usePolling(reload: () => void, active: boolean): void {
  useEffect(() => {
    if (!active) return;
    const timer = window.setInterval(reload, POLL_MS);
    return () => window.clearInterval(timer);
  }, [reload, active]);
}
