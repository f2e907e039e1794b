// An admin creates a template and watches its preview follow the values typed (a value that
// would make an option refused), makes a panel on it and runs it; then tests a data source,
// makes an API key (shown once) and finds the template's creation in the audit log.
import { checkAccessibility, eventually, runScenario, screenshot, shownLog, signIn } from "./lib.mjs";

await runScenario(async (page) => {
  await signIn(page, "admin");
  await page.getByRole("link", { name: "Templates" }).click();
  await page.getByRole("textbox", { name: "Slug" }).fill("greet");
  await page.getByRole("textbox", { name: "Name" }).fill("Greet someone");
  await page.getByRole("textbox", { name: "Command" }).fill("echo hello {{who}}");
  await page.getByRole("textbox", { name: "Parameters" }).fill("who");
  await checkAccessibility(page, "the templates");
  await page.getByRole("button", { name: "Create the template" }).click();
  await page.getByRole("heading", { name: "Greet someone", level: 1 }).waitFor();

  const preview = page.getByTestId("preview");
  const who = page.getByRole("textbox", { name: "who (string)" });
  await who.fill("world");
  await preview.getByText("echo hello world").waitFor();
  await who.fill("--force");
  await preview.getByText("Would be refused:").waitFor();
  await checkAccessibility(page, "the template's preview");
  await screenshot(page, "template-preview");
  await who.fill("world");
  await preview.getByText("Would run:").waitFor();

  await page.getByRole("link", { name: "New panel on this template" }).click();
  await page.getByRole("textbox", { name: "Label" }).fill("Whom to greet");
  await page.getByRole("textbox", { name: "Help text" }).fill("A name.");
  await checkAccessibility(page, "the new panel");
  await page.getByRole("button", { name: "Create the panel" }).click();
  await page.getByRole("textbox", { name: /^Whom to greet/ }).fill("console");
  await page.getByRole("button", { name: "Submit" }).click();
  await page.waitForURL(/\/submissions\/[0-9a-f-]+$/);
  await eventually(async () => (await page.getByTestId("status").textContent()) === "succeeded", "succeeded");
  await page.getByText("Complete").waitFor(); // the log stream has every line
  const lines = await shownLog(page);

  await page.getByRole("link", { name: "Data sources" }).click();
  await page
    .getByRole("button", { name: /^Test / })
    .first()
    .click();
  await page.getByRole("status").filter({ hasText: "200:" }).waitFor();
  await checkAccessibility(page, "the data sources");

  await page.getByRole("link", { name: "API keys" }).click();
  await page.getByRole("textbox", { name: "Name" }).fill("ci");
  await page.getByRole("button", { name: "Create the key" }).click();
  const key = await page.getByTestId("new-key").textContent();
  await checkAccessibility(page, "the API keys");
  await page.getByRole("button", { name: "I have copied it" }).click();
  if (await page.getByText(key).count()) throw new Error("the key is shown again");

  await page.getByRole("link", { name: "Secrets" }).click();
  await page.getByRole("heading", { name: "Secret references" }).waitFor();
  await checkAccessibility(page, "the secrets");

  await page.getByRole("link", { name: "Audit" }).click();
  await page.getByRole("cell", { name: "template.create" }).first().waitFor();
  await checkAccessibility(page, "the audit log");
  await screenshot(page, "audit");
  return { lines, keyPrefix: key.slice(0, 12) };
});
