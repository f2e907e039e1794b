// An admin changes an existing template's command: the preview, asked again for the saved
// version, shows the new argv for the values already typed; a refused change shows the
// service's detail; then a panel on the template runs the new command.
import { checkAccessibility, eventually, input, runScenario, screenshot, shownLog, signIn } from "./lib.mjs";

await runScenario(async (page) => {
  await signIn(page, "admin");
  await page.getByRole("link", { name: "Templates" }).click();
  await page.getByRole("link", { name: input.templateName }).click();
  await page.getByRole("heading", { name: input.templateName, level: 1 }).waitFor();

  const preview = page.getByTestId("preview");
  await page.getByRole("textbox", { name: "who (string)" }).fill("world");
  await preview.getByText("echo hello world").waitFor();

  const command = page.getByRole("textbox", { name: "Command" });
  // A parameter the command names must be declared: the refusal is shown, nothing saved.
  await command.fill("echo goodbye {{whom}}");
  await page.getByRole("button", { name: "Save the template" }).click();
  await page.getByRole("alert").filter({ hasText: "The change was refused" }).waitFor();
  await page.getByRole("alert").getByText("Request id:").waitFor();

  await command.fill("echo goodbye {{who}}");
  await page.getByRole("spinbutton", { name: "Timeout (seconds)" }).fill("120");
  await page.getByRole("textbox", { name: "Allowed roles" }).fill("admin, operator");
  await page.getByRole("button", { name: "Save the template" }).click();
  await page.getByRole("status").filter({ hasText: "Saved as version 2." }).waitFor();
  await preview.getByText("echo goodbye world").waitFor();
  await checkAccessibility(page, "the template's editor");
  await screenshot(page, "template-edit");

  await page.getByRole("link", { name: "New panel on this template" }).click();
  await page.getByRole("textbox", { name: "Label" }).fill("Whom to bid farewell");
  await page.getByRole("button", { name: "Create the panel" }).click();
  await page.getByRole("textbox", { name: /^Whom to bid farewell/ }).fill("console");
  await page.getByRole("button", { name: "Submit" }).click();
  await page.waitForURL(/\/submissions\/[0-9a-f-]+$/);
  await eventually(async () => (await page.getByTestId("status").textContent()) === "succeeded", "succeeded");
  await page.getByText("Complete").waitFor(); // the log stream has every line
  return { lines: await shownLog(page) };
});
