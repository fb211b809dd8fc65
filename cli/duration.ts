import { UsageError } from "./usage-error.js";

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** `90`, `90s`, `15m`, `1h`, `7d` → seconds (a whole, positive number). */
export function parseDuration(flag: string, value: string): number {
  const m = /^(\d+)([smhd]?)$/.exec(value.trim());
  const seconds = m ? Number(m[1]) * UNIT_SECONDS[m[2] || "s"] : NaN;
  if (!Number.isSafeInteger(seconds) || seconds <= 0) throw new UsageError(`${flag} must be a positive duration like 90s, 15m, 1h or 7d, got ${JSON.stringify(value)}`);
  return seconds;
}
