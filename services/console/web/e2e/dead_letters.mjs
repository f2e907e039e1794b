// A poison message is shown on the queue's dead-letter page with why it failed, and
// replayed after a dry run says what would move.
import { checkAccessibility, input, runScenario, screenshot, signIn } from "./lib.mjs";

await runScenario(async (page) => {
  await signIn(page, "admin");
  await page.getByRole("link", { name: "Queues" }).click();
  await page.getByRole("heading", { name: "Queues", level: 1 }).waitFor();
  await checkAccessibility(page, "the queues");
  await screenshot(page, "queues");
  const row = page.getByRole("row", { name: new RegExp(`^${input.queue} `) });
  await row.getByRole("link").click();
  await page.getByRole("heading", { name: `Dead letters of ${input.queue}` }).waitFor();
  await page.getByText(input.reason).first().waitFor();
  await page.getByRole("checkbox").first().check();
  await page.getByRole("button", { name: "Replay selected (dry run first)" }).click();
  await page.getByText(`Dry run: 1 message(s) would go back to ${input.queue}.`).waitFor();
  await checkAccessibility(page, "the dead letters with a dry run");
  await screenshot(page, "dead-letters");
  await page.getByRole("button", { name: "Confirm the replay" }).click();
  await page.getByText("Replayed 1 of 1").waitFor();
  return {};
});
