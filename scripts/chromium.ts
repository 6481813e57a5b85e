/**
 * Headless Chromium for the browser tests: Debian's package driven by
 * playwright-core (no browser download works here). The flags keep it from
 * reaching for Google's hosts, which this machine's closed network refuses.
 */
import { existsSync } from "node:fs";
import { type Browser, chromium } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";

/**
 * Browser tests run wherever Debian's chromium is installed, and always in CI
 * (`.ci/run` installs it, so a missing browser there fails loudly). On a
 * fresh machine without it, `npm test` skips them and says how to get it.
 */
export const skipBrowserTests: boolean = !existsSync(CHROMIUM) && !process.env.CI;
if (skipBrowserTests) {
  console.warn(`browser tests skipped: ${CHROMIUM} is missing (apt-get install -y chromium)`);
}

/** Launches headless Chromium; `extraArgs` add flags (e.g. `--host-resolver-rules=…`). */
export function launchChromium(timeout = 60_000, extraArgs: string[] = []): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
  return chromium.launch({
    executablePath: CHROMIUM,
    timeout,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--disable-quic",
      ...extraArgs,
    ],
  });
}
