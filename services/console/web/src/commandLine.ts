/** An argv as a shell would need it typed (the worker runs argv with no shell: this is for
 * reading, each argument's boundaries visible). */
export function commandLine(argv: string[]): string {
  return argv
    .map((argument) => (/^[\w@%+=:,./-]+$/.test(argument) ? argument : `'${argument.replaceAll("'", `'\\''`)}'`))
    .join(" ");
}
