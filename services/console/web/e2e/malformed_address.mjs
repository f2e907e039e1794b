// An address whose escapes are not UTF-8 (a link cut short, a typo) is a page that is not
// found, with the navigation still there: decoding it threw, and the app went blank.
import { fail, input, runScenario } from "./lib.mjs";

await runScenario(async (page) => {
  await page.goto(`${input.console}/panels/%E0%A4%A#dev-sign-in=viewer`);
  await page.getByRole("heading", { name: "Not found", level: 1 }).waitFor();
  if (!(await page.getByRole("link", { name: "Runs" }).count())) fail("the navigation is gone");
  return {};
});
