// A long run is cancelled from its page; the cancelled (finished) run is retried, which
// opens the new attempt.
import { eventually, input, runScenario, screenshot, signIn } from "./lib.mjs";

const status = (page) => page.getByTestId("status").textContent();

await runScenario(async (page) => {
  await signIn(page, "operator");
  await page.getByRole("link", { name: input.panelTitle }).click();
  await page.getByRole("button", { name: "Submit" }).click();
  await page.waitForURL(/\/submissions\/[0-9a-f-]+$/);
  await page.getByTestId("log-lines").getByText("started").waitFor();
  await page.getByRole("button", { name: "Cancel" }).click();
  await eventually(async () => (await status(page)) === "cancelled", "cancelled");
  await screenshot(page, "cancelled");
  await page.getByRole("button", { name: "Retry" }).click();
  await page.waitForURL(/\/executions\/[0-9a-f-]+$/);
  await page.getByText("Retry of").waitFor();
  const retry = page.url().split("/").pop();
  await page.getByTestId("log-lines").getByText("started").waitFor();
  await page.getByRole("button", { name: "Cancel" }).click();
  await eventually(async () => (await status(page)) === "cancelled", "the retry cancelled");
  return { retry };
});
