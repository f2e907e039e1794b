/** A 422's field errors (``data.<field>``) as the form's error schema, shown on each field. */
import type { ErrorSchema } from "@rjsf/utils";
import type { FieldProblem } from "../api/client";

export function fieldErrors(problems: FieldProblem[]): ErrorSchema {
  const schema: Record<string, { __errors: string[] }> = {};
  for (const problem of problems) {
    const name = problem.field.replace(/^data\./, "").split(".")[0];
    (schema[name] ??= { __errors: [] }).__errors.push(problem.message);
  }
  return schema as ErrorSchema;
}

/** Problems that name no field of the form (shown above it). */
export function formLevelErrors(problems: FieldProblem[], fields: string[]): FieldProblem[] {
  return problems.filter((problem) => !fields.includes(problem.field.replace(/^data\./, "").split(".")[0]));
}
