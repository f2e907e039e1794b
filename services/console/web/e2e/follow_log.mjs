// Submits the panel and follows its run's log to the end, whatever the test does to the
// stream meanwhile (cuts its connection, holds every stream the person may open): every
// line shown once, in order, none missing; the stream's states as they were shown.
import { eventually, fail, input, runScenario, shownLog, signIn } from "./lib.mjs";

await runScenario(async (page) => {
  await signIn(page, "operator");
  await page.getByRole("link", { name: input.panelTitle }).click();
  await page.getByRole("button", { name: "Submit" }).click();
  await page.waitForURL(/\/submissions\/[0-9a-f-]+$/);
  const states = new Set();
  await eventually(
    async () => {
      states.add(await page.getByTestId("stream-state").textContent());
      return (await page.getByTestId("status").textContent()) === "succeeded" && states.has("Complete");
    },
    "the run's end",
    40_000,
  );
  const lines = await shownLog(page);
  const seqs = lines.map(([seq]) => seq);
  if (new Set(seqs).size !== seqs.length) fail(`a line is shown twice: ${seqs}`);
  return { lines, states: [...states] };
});
