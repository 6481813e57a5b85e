/**
 * Failed authentication, limited per client address. Every request that
 * offers a credential first passes {@link authGate}: an address whose recent
 * failures used up its budget is answered 429 before its credential is even
 * looked at, so a guesser learns nothing more (not even "wrong") until the
 * budget refills. Each 401 costs one unit ({@link recordAuthFailure}); a
 * success costs nothing, so a working client is never slowed by this.
 *
 * The budget is a token bucket per address in the isolate's memory
 * (`AUTH_FAILURES_PER_MINUTE`, default 60: a burst of 60, refilled at 60 a
 * minute; "0" turns it off). Deployed, the `AUTH_FAILURE_LIMITER` rate
 * limiting binding also counts failures across the isolates of a Cloudflare
 * location; when it says an address is over, this isolate closes the gate for
 * that address for a minute. Locally (`npm start`) there is no address to go
 * by (it listens on loopback only), so all clients share one budget.
 */
import type { Context } from "hono";
import { EdgemqError } from "../protocol/errors.ts";
import type { GatewayEnv } from "./auth.ts";
import { LocalLimiter, perMinuteOf, takeToken } from "./rate-limit.ts";

export const DEFAULT_AUTH_FAILURES_PER_MINUTE = 60;

/** How long a location-wide "over" from the binding closes this isolate's gate. */
const BLOCK_MS = 60_000;

/** Failure budgets by client address. */
const buckets = new LocalLimiter();

/** Failures allowed per minute for this deployment; 0 when the limit is off. */
function perMinute(c: Context<GatewayEnv>): number {
  const v = c.env.AUTH_FAILURES_PER_MINUTE;
  return v === undefined ? DEFAULT_AUTH_FAILURES_PER_MINUTE : perMinuteOf(v);
}

/**
 * The client's address as a limiter key. Cloudflare sets `CF-Connecting-IP`
 * (a client cannot: Cloudflare replaces it), so it is trusted only when the
 * broker is deployed. An IPv6 client holds a whole /64, so its first four
 * groups are the key.
 */
export function clientKey(c: Context<GatewayEnv>): string {
  if (c.env.EDGEMQ_LOCAL === "1") return "loopback";
  const ip = c.req.header("cf-connecting-ip")?.trim();
  if (!ip) return "unknown";
  return ip.includes(":") ? `${ipv6Prefix64(ip)}::/64` : ip;
}

/** The first four groups of an IPv6 address, expanded (`2001:db8::1` → `2001:db8:0:0`). */
export function ipv6Prefix64(ip: string): string {
  const [head = "", tail] = ip.toLowerCase().split("::", 2);
  const left = head ? head.split(":") : [];
  const right = tail === undefined ? [] : tail ? tail.split(":") : [];
  const zeros =
    tail === undefined ? [] : Array(Math.max(0, 8 - left.length - right.length)).fill("0");
  const groups = [...left, ...zeros, ...right].map((g) => g.replace(/^0+(?=.)/, ""));
  return groups.slice(0, 4).join(":");
}

/**
 * Refuses (429, with `Retry-After`) a request from an address whose failure
 * budget is used up. Looks only: the budget is spent by failures.
 */
export function authGate(c: Context<GatewayEnv>, now = Date.now()): void {
  const rate = perMinute(c);
  if (rate === 0) return;
  const key = clientKey(c);
  const t = takeToken(buckets.get(key), rate, now);
  if (t.ok) return;
  c.header("Retry-After", String(Math.max(1, Math.ceil(t.retryAfterMs / 1000))));
  throw new EdgemqError(
    "RATE_LIMITED",
    "too many failed authentications from this address; wait before trying again",
  );
}

/** Spends one unit of the address's budget for a refused credential. */
export async function recordAuthFailure(c: Context<GatewayEnv>, now = Date.now()): Promise<void> {
  const rate = perMinute(c);
  if (rate === 0) return;
  const key = clientKey(c);
  buckets.take(key, rate, now);
  const binding = c.env.EDGEMQ_LOCAL === "1" ? undefined : c.env.AUTH_FAILURE_LIMITER;
  if (!binding) return;
  try {
    const { success } = await binding.limit({ key: `authfail:${key}` });
    if (!success) buckets.set(key, { tokens: 1 - (BLOCK_MS * rate) / 60_000, at: now });
  } catch {
    // The binding is a second line; the isolate's own budget still holds.
  }
}
