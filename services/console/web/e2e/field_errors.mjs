// A 422 from the server appears on the field it names; a double click on submit creates one
// submission.
import { checkAccessibility, fail, input, runScenario, screenshot, signIn } from "./lib.mjs";

await runScenario(async (page) => {
  await signIn(page, "operator");
  await page.getByRole("link", { name: input.panelTitle }).click();
  const account = page.getByRole("textbox", { name: /^Account/ });
  await account.fill("deploy-bot");
  const password = page.getByLabel(/^New password/);
  if ((await password.getAttribute("type")) !== "password") fail("the secret field is not a password input");
  // Too short to be masked in output: only the server knows that rule.
  await password.fill("abc");
  await page.getByRole("button", { name: "Submit" }).click();
  const error = page.locator("#field_password__error");
  await error.getByText("a secret needs at least 4 characters").waitFor();
  if (!(await page.getByRole("textbox", { name: /^Account/ }).isVisible())) fail("the form went away");
  if (/\/submissions\//.test(page.url())) fail("a refused submission left the form");
  await checkAccessibility(page, "the form with a server error");
  await screenshot(page, "field-error");

  await password.fill("a-long-enough-secret");
  await page.getByRole("button", { name: "Submit" }).dblclick();
  await page.waitForURL(/\/submissions\/[0-9a-f-]+$/);
  return { submission: page.url().split("/").pop() };
});
