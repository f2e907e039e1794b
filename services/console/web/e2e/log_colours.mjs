// Submits the panel and reads its run's log as shown: each line's text, and each coloured
// part's text with its computed colour and weight.
import { eventually, input, runScenario, signIn } from "./lib.mjs";

await runScenario(async (page) => {
  await signIn(page, "operator");
  await page.getByRole("link", { name: input.panelTitle }).click();
  await page.getByRole("button", { name: "Submit" }).click();
  await page.waitForURL(/\/submissions\/[0-9a-f-]+$/);
  await eventually(
    async () => (await page.getByTestId("stream-state").textContent()) === "Complete",
    "the run's end",
    40_000,
  );
  return page
    .getByTestId("log-lines")
    .locator("li")
    .evaluateAll((items) =>
      items.map((li) => ({
        text: li.textContent,
        parts: [...li.querySelectorAll("span")].map((span) => {
          const computed = getComputedStyle(span);
          return [span.textContent, computed.color, computed.fontWeight];
        }),
      })),
    );
});
