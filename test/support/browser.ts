import { chromium, type Browser } from "playwright-core";
import { chromiumPath } from "./test-dependencies.js";

/**
 * Debian's Chromium, headless (never a downloaded browser). The flags keep it off the
 * network: this machine refuses outside connections.
 */
export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    // The one `npm test` checked for (CHROMIUM_PATH, else `chromium` on the PATH).
    executablePath: chromiumPath() ?? "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
  });
}
