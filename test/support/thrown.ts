import { FanoutError } from "../../protocol/errors.js";

/** `"<status> <code>"` of the FanoutError that `f` throws, undefined if it returns; other errors are rethrown. */
export function thrownCode(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (e) {
    if (e instanceof FanoutError) return `${e.status} ${e.code}`;
    throw e;
  }
}
