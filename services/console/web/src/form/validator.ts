/** The form's validator: ajv, checking what panel-svc checks and no more. Field patterns are
 * read as what they are, RE2, by RE2's JavaScript port: a JavaScript RegExp would refuse valid
 * RE2 such as `(?i)` and so block the form, and would take seconds, then minutes, on `(a+)+`
 * against a few dozen characters; RE2 runs in linear time. */
import { customizeValidator } from "@rjsf/validator-ajv8";
import { RE2JS } from "re2js";

function re2(pattern: string): { test: (text: string) => boolean } {
  const compiled = RE2JS.compile(pattern);
  return { test: (text) => compiled.test(text) };
}
// ajv writes `code` into standalone validators' source; this one is only ever run in place.
re2.code = "re2js";

export const validator = customizeValidator({
  ajvOptionsOverrides: { code: { regExp: re2 } },
  // The formats as panel-svc checks them (panel_svc/fields/types.py), never stricter: ajv's
  // own refuse addresses and links the server takes, such as jörg@bücher.de.
  customFormats: {
    email: /^[^@\s]+@[^@\s]+\.[^@\s]+$/u,
    uri: /^https?:\/\/[^/?#]+/iu,
  },
});
