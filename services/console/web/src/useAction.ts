/** A button's action against the API: busy while it runs, its failure kept to be shown. */
import { useState } from "react";

export interface Action {
  busy: boolean;
  problem: unknown;
  run: (work: () => Promise<void>) => Promise<void>;
}

export function useAction(): Action {
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<unknown>(null);
  async function run(work: () => Promise<void>): Promise<void> {
    setBusy(true);
    setProblem(null);
    try {
      await work();
    } catch (error) {
      setProblem(error);
    } finally {
      setBusy(false);
    }
  }
  return { busy, problem, run };
}
