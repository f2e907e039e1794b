// Fields are checked in the browser as the server checks them: patterns as RE2 (an inline
// flag works, a pattern a backtracking engine would take minutes on answers at once, a value
// that does not match is shown on its field before anything is sent), and an address and a
// link with letters beyond ASCII are taken. A half-filled form is not shown again after
// signing out (to whoever signs in next in the tab).
import { checkAccessibility, fail, input, runScenario, signIn } from "./lib.mjs";

await runScenario(async (page) => {
  await signIn(page, "operator");
  await page.getByRole("link", { name: input.panelTitle }).click();
  await page.getByRole("textbox", { name: /^Code/ }).fill("left behind");
  await page.getByRole("button", { name: "Sign out" }).click();
  await signIn(page, "operator");
  await page.getByRole("link", { name: input.panelTitle }).click();
  if ((await page.getByRole("textbox", { name: /^Code/ }).inputValue()) !== "") {
    fail("a draft was shown again after signing out");
  }
  await page.getByRole("textbox", { name: /^Code/ }).fill("AbC");
  const word = page.getByRole("textbox", { name: /^Word/ });
  await word.fill(`${"a".repeat(40)}!`);
  await page.getByRole("button", { name: "Submit" }).click();
  await page.locator("#field_word__error").getByText("must match pattern").waitFor();
  if (await page.locator("#field_code__error").count()) fail("the code was refused");
  if (/\/submissions\//.test(page.url())) fail("a value that does not match was sent");
  await checkAccessibility(page, "the form with a pattern error");

  await word.fill("aaaa");
  await page.getByRole("textbox", { name: /^Contact/ }).fill("jörg@bücher.de");
  await page.getByRole("textbox", { name: /^Link/ }).fill("https://bücher.de/");
  await page.getByRole("button", { name: "Submit" }).click();
  await page.waitForURL(/\/submissions\/[0-9a-f-]+$/);
  return { submission: page.url().split("/").pop() };
});
