/**
 * The web console at `/console`: a public HTML shell, its script and its
 * stylesheet. No data is served here; the script reads everything from the
 * authenticated JSON API with the admin token the user enters.
 *
 * The script is the browser code of app/, bundled at build time by
 * scripts/build-console.ts into app-bundle.gen.ts (gitignored).
 */
import { Hono } from "hono";
import type { GatewayEnv } from "../gateway/auth.ts";
import { ConsolePage } from "./page.tsx";
import { consoleScript } from "./app-bundle.gen.ts";
import { consoleStyle } from "./style.ts";

/** Where the console is mounted (app.ts mounts this sub-app there). */
const BASE = "/console";

/**
 * Strict: only this origin's script, stylesheet and API; no inline script or
 * style, no framing, no form posts, no plugins.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy": CONSOLE_CSP,
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
  // Small and versioned with the Worker; revalidate so a deploy shows at once.
  "cache-control": "no-cache",
};

export const consoleRoutes = new Hono<GatewayEnv>();

consoleRoutes.use("*", async (c, next) => {
  await next();
  for (const [k, v] of Object.entries(SECURITY_HEADERS)) c.res.headers.set(k, v);
});

const page = `<!doctype html>${(<ConsolePage base={BASE} />).toString()}`;

consoleRoutes.get("/", (c) => c.html(page));
// Hono joins "/console" + "/" to "/console"; answer "/console/" too (the form people type).
consoleRoutes.use("*", async (c, next) => {
  if (c.req.method === "GET" && c.req.path === `${BASE}/`) return c.html(page);
  await next();
});
consoleRoutes.get("/app.js", (c) =>
  c.body(consoleScript, 200, { "content-type": "text/javascript; charset=utf-8" }),
);
consoleRoutes.get("/app.css", (c) =>
  c.body(consoleStyle, 200, { "content-type": "text/css; charset=utf-8" }),
);
