/**
 * The open local mode (`npm start` with neither secret) grants every request
 * every permission. Loopback keeps other machines out, but not the web pages
 * the owner's browser visits: a page may send "simple" cross-site requests
 * (a `text/plain` POST needs no CORS preflight, and the browser sends it
 * whatever the answer), and a page on a DNS name rebound to 127.0.0.1 is
 * same-origin with the broker as far as the browser knows. So, while open:
 *
 * - a `Host` that is not loopback (`localhost`, `127.x.x.x`, `[::1]`) is
 *   refused: that is what a rebound name looks like;
 * - an `Origin` other than the broker's own (the console) or one listed in
 *   `CORS_ORIGINS` is refused, as is a request the browser marks
 *   `Sec-Fetch-Site: cross-site` or `same-site` without such an origin
 *   (an `<img>` or `<script>` GET carries no Origin);
 * - a mutating call (anything but GET, HEAD, OPTIONS) with a body must say
 *   `Content-Type: application/json`, which no cross-site request can send
 *   without a preflight that CORS then refuses.
 *
 * Clients outside browsers (the CLI, the SDK in Node, curl with
 * `-H 'content-type: application/json'`) send none of these headers and are
 * not affected. With a secret set none of this applies: a token in
 * `Authorization` is something a cross-site page cannot send.
 */
import type { MiddlewareHandler } from "hono";
import { EdgemqError } from "../protocol/errors.ts";
import { isLoopbackHost } from "../protocol/signing.ts";
import { type GatewayEnv, isOpenMode } from "./auth.ts";

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** Origins listed in `CORS_ORIGINS`, exactly (`*` does not count while open: it would hand the broker to every page). */
function listedOrigins(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s && s !== "*");
}

/** The host name of a `Host` header value (`127.0.0.1:8787`, `[::1]:8787`, `localhost`). */
function hostnameOf(host: string): string {
  if (host.startsWith("[")) return host.slice(0, host.indexOf("]") + 1);
  return host.replace(/:\d*$/, "");
}

function isJson(contentType: string | undefined): boolean {
  const media = (contentType ?? "").split(";")[0]!.trim().toLowerCase();
  return media === "application/json";
}

/** Refuses, while running open, what only a web page would send. First middleware of the app. */
export const openModeGuard: MiddlewareHandler<GatewayEnv> = async (c, next) => {
  if (!isOpenMode(c.env)) return next();
  const url = new URL(c.req.url);
  const host = c.req.header("host");
  if (!isLoopbackHost(url.hostname) || (host !== undefined && !isLoopbackHost(hostnameOf(host)))) {
    throw new EdgemqError(
      "FORBIDDEN",
      "running open (no ADMIN_TOKEN or TOKEN_SECRET): only loopback host names are served (localhost, 127.0.0.1, [::1])",
    );
  }
  const origin = c.req.header("origin");
  const listed = origin !== undefined && listedOrigins(c.env.CORS_ORIGINS).includes(origin);
  if (origin !== undefined && origin !== url.origin && !listed) {
    throw new EdgemqError(
      "FORBIDDEN",
      `running open (no ADMIN_TOKEN or TOKEN_SECRET): requests from web pages of ${origin} are refused (list the origin in CORS_ORIGINS to allow it)`,
    );
  }
  const site = c.req.header("sec-fetch-site");
  if ((site === "cross-site" || site === "same-site") && !listed) {
    throw new EdgemqError(
      "FORBIDDEN",
      "running open (no ADMIN_TOKEN or TOKEN_SECRET): cross-site requests are refused",
    );
  }
  if (!SAFE_METHODS.has(c.req.method)) {
    // An empty Content-Type says nothing, like none.
    const type = c.req.header("content-type") || undefined;
    const hasBody =
      c.req.header("transfer-encoding") !== undefined ||
      Number(c.req.header("content-length") ?? "0") > 0;
    if ((hasBody || type !== undefined) && !isJson(type)) {
      throw new EdgemqError(
        "UNSUPPORTED_MEDIA_TYPE",
        "running open (no ADMIN_TOKEN or TOKEN_SECRET): request bodies must be sent as Content-Type: application/json",
      );
    }
  }
  return next();
};
