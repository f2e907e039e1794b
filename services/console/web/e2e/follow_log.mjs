// Submits the panel and follows its run's log to the end, whatever the test does to the
// stream meanwhile (cuts its connection, holds every stream the person may open): every
// line shown once, in order, none missing; every state the stream showed, as the page
// rendered it (a state shown for less than a poll's interval is not missed).
import { eventually, fail, input, runScenario, shownLog, signIn } from "./lib.mjs";

await runScenario(async (page) => {
  await signIn(page, "operator");
  await page.getByRole("link", { name: input.panelTitle }).click();
  await page.evaluate(() => {
    window.streamStates = [];
    new MutationObserver(() => {
      const shown = document.querySelector('[data-testid="stream-state"]')?.textContent;
      if (shown && shown !== window.streamStates.at(-1)) window.streamStates.push(shown);
    }).observe(document.body, { subtree: true, childList: true, characterData: true });
  });
  await page.getByRole("button", { name: "Submit" }).click();
  await page.waitForURL(/\/submissions\/[0-9a-f-]+$/);
  const states = () => page.evaluate(() => window.streamStates);
  await eventually(
    async () =>
      (await page.getByTestId("status").textContent()) === "succeeded" && (await states()).includes("Complete"),
    "the run's end",
    40_000,
  );
  const lines = await shownLog(page);
  const seqs = lines.map(([seq]) => seq);
  if (new Set(seqs).size !== seqs.length) fail(`a line is shown twice: ${seqs}`);
  return { lines, states: await states() };
});
