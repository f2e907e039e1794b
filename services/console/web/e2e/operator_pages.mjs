// An admin approves a run from the inbox, seeing the argv it will run with; a schedule shows
// its next fire times and is paused.
import { checkAccessibility, eventually, input, runScenario, screenshot, signIn } from "./lib.mjs";

await runScenario(async (page) => {
  await signIn(page, "admin");
  await page.getByRole("link", { name: "Approvals" }).click();
  const card = page.getByRole("listitem").filter({ hasText: input.template });
  await card.getByText(input.argv).waitFor();
  await checkAccessibility(page, "the approvals");
  await screenshot(page, "approvals");
  await card.getByRole("textbox", { name: "Comment" }).fill("go ahead");
  await card.getByRole("button", { name: "Approve" }).click();
  await page.getByText("Nothing waits for your decision.").waitFor();

  await page.getByRole("link", { name: "Schedules" }).click();
  const row = page.getByRole("row", { name: new RegExp(`^${input.schedule} `) });
  await row.getByRole("button", { name: "Next times" }).click();
  const fires = row.getByRole("list", { name: `Next fires of ${input.schedule}` }).getByRole("listitem");
  await eventually(async () => (await fires.count()) === 5, "five next fire times");
  await checkAccessibility(page, "the schedules");
  await screenshot(page, "schedules");
  await row.getByRole("button", { name: "Pause" }).click();
  await row.getByRole("button", { name: "Resume" }).waitFor();
  return {};
});
