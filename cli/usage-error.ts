/** A command line that cannot run as given: reported on one line, exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}
