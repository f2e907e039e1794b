/** A template's parameters as people type them: `name` or `name:type`, one a line, a `?` after
 * the name when it may be left out. */
import type { TemplateParameter } from "../../api/types";

export const PARAMETER_TYPES = ["string", "integer", "number", "boolean", "secret"];

/** The keys operation-svc accepts for a parameter (its answer may carry others). */
const ACCEPTED = ["default", "enum", "minimum", "maximum", "min_length", "max_length", "pattern", "allow_leading_dash"];

export function parseParameters(text: string): { name: string; type: string; required: boolean }[] {
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => {
      const [declared, type = "string"] = line.split(":").map((part) => part.trim());
      const optional = declared.endsWith("?");
      return { name: optional ? declared.slice(0, -1).trim() : declared, type, required: !optional };
    });
}

export function formatParameters(parameters: TemplateParameter[]): string {
  return parameters
    .map((parameter) => `${parameter.name}${parameter.required ? "" : "?"}:${parameter.type}`)
    .join("\n");
}

/** The typed parameters, each keeping the constraints it had (enum, pattern, …) while its
 * type is unchanged. */
export function mergeParameters(text: string, current: TemplateParameter[]): Record<string, unknown>[] {
  return parseParameters(text).map((parameter) => {
    const before = current.find((each) => each.name === parameter.name);
    const kept: Record<string, unknown> = {};
    if (before && before.type === parameter.type) {
      for (const key of ACCEPTED) if (before[key] !== undefined && before[key] !== null) kept[key] = before[key];
    }
    return { ...kept, ...parameter };
  });
}
