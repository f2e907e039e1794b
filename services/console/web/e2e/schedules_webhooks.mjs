// An admin creates a schedule (a template at 02:30 in Paris, queue_one, run_once; a time zone
// refused first, shown with why) and sees its next fire times; creates a webhook and sees its
// signing secret once; opens another webhook's deliveries (each attempt shown, the receiver's
// answer escaped) and sends one again.
import { checkAccessibility, eventually, input, runScenario, screenshot, signIn } from "./lib.mjs";

await runScenario(async (page) => {
  await signIn(page, "admin");
  await page.getByRole("link", { name: "Schedules" }).click();
  const form = page.getByRole("form", { name: "New schedule" });
  await form.getByRole("textbox", { name: "Name" }).fill("console-nightly");
  await form.getByRole("radio", { name: "A template" }).check();
  await form.getByRole("combobox", { name: "Template" }).selectOption(input.template);
  await form.getByRole("radio", { name: "On a cron expression" }).check();
  await form.getByRole("textbox", { name: "Cron expression" }).fill("30 2 * * *");
  // A 422 shows why each field was refused, not only which.
  await form.getByRole("textbox", { name: "Time zone" }).fill("Mars/Olympus");
  await form.getByRole("button", { name: "Create the schedule" }).click();
  await page
    .getByRole("list", { name: "Fields refused" })
    .getByText("timezone: Value error, unknown IANA timezone 'Mars/Olympus'")
    .waitFor();
  await form.getByRole("textbox", { name: "Time zone" }).fill("Europe/Paris");
  await form.getByRole("combobox", { name: "When the previous run is still going" }).selectOption("queue_one");
  await form.getByRole("combobox", { name: "Slots missed while the platform was down" }).selectOption("run_once");
  await checkAccessibility(page, "the new schedule");
  await form.getByRole("button", { name: "Create the schedule" }).click();
  const fires = page.getByRole("list", { name: "Next fires of console-nightly" }).first();
  await eventually(async () => (await fires.getByRole("listitem").count()) === 5, "five next fire times");
  const first = await fires.getByRole("listitem").first().textContent();
  if (!first.includes("02:30") || !first.includes("Europe/Paris")) throw new Error(`unexpected fire: ${first}`);
  await page.getByRole("rowheader", { name: "console-nightly" }).waitFor();
  await checkAccessibility(page, "the schedule created");
  await screenshot(page, "schedule-new");

  await page.getByRole("link", { name: "Webhooks" }).click();
  const hooks = page.getByRole("form", { name: "New webhook" });
  await hooks.getByRole("textbox", { name: "URL" }).fill(input.hookUrl);
  await hooks.getByRole("textbox", { name: "Description" }).fill("The console's own");
  await hooks.getByRole("checkbox", { name: "operation.execution.failed" }).check();
  await hooks.getByRole("button", { name: "Create the webhook" }).click();
  const secret = await page.getByTestId("new-secret").textContent();
  if (!secret.startsWith("whsec_")) throw new Error(`not a secret: ${secret}`);
  await checkAccessibility(page, "the webhook's secret");
  await page.getByRole("button", { name: "I have copied it" }).click();
  await page.getByText("The console's own").waitFor();
  if (await page.getByText(secret).count()) throw new Error("the secret is shown again");

  const watched = page.getByRole("row").filter({ hasText: input.watchedDescription });
  await watched.getByRole("button", { name: "Deliveries" }).click();
  const attempts = page.getByRole("list", { name: /^Attempts of delivery/ }).first();
  await eventually(async () => (await attempts.getByRole("listitem").count()) >= 1, "a delivery's first attempt");
  // The receiver's answer, shown with what a terminal would obey written as escapes.
  await attempts.getByText("no hook here \\u202etxt.exe \\x1b[2J").first().waitFor();
  const before = await attempts.getByRole("listitem").count();
  await watched
    .getByRole("button", { name: /^Resend / })
    .first()
    .click();
  await eventually(async () => (await attempts.getByRole("listitem").count()) > before, "the resent attempt");
  await checkAccessibility(page, "the webhook's deliveries");
  await screenshot(page, "webhooks");
  return { secret };
});
