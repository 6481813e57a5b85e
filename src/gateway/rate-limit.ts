/**
 * Per-token rate limiting at the gateway. Deployed on Cloudflare it uses the
 * Workers rate limiting binding (`RATE_LIMITER`, `[[ratelimits]]` in
 * wrangler.toml); without that binding (`npm start`) a token bucket per token
 * subject lives in the isolate's memory, sized by `RATE_LIMIT_PER_MINUTE`
 * (unset or 0: off). The admin token and Service Binding calls are never
 * limited: the limit is there to contain a leaked browser token.
 */
import type { MiddlewareHandler } from "hono";
import { EdgemqError } from "../protocol/errors.ts";
import type { GatewayEnv } from "./auth.ts";

/** A token bucket: `tokens` left at time `at` (ms). */
export interface Bucket {
  tokens: number;
  at: number;
}

/** Outcome of one {@link takeToken}: the bucket to keep, and how long to wait when refused. */
export interface Take {
  ok: boolean;
  bucket: Bucket;
  /** 0 when `ok`; otherwise ms until one token is back. */
  retryAfterMs: number;
}

/**
 * Takes one token from a bucket holding at most `perMinute` tokens that
 * refills at `perMinute` per 60 s. A new subject starts full (a burst of
 * `perMinute` is allowed). Pure: time comes in as `now`; a clock that steps
 * back refills nothing.
 */
export function takeToken(bucket: Bucket | undefined, perMinute: number, now: number): Take {
  const capacity = perMinute;
  const perMs = perMinute / 60_000;
  const prev = bucket ?? { tokens: capacity, at: now };
  const elapsed = Math.max(0, now - prev.at);
  const tokens = Math.min(capacity, prev.tokens + elapsed * perMs);
  const at = Math.max(now, prev.at);
  if (tokens >= 1) return { ok: true, bucket: { tokens: tokens - 1, at }, retryAfterMs: 0 };
  return { ok: false, bucket: { tokens, at }, retryAfterMs: Math.ceil((1 - tokens) / perMs) };
}

/** Parses `RATE_LIMIT_PER_MINUTE`: a positive integer, or 0 / unset / unparsable for off. */
export function perMinuteOf(value: string | undefined): number {
  if (value === undefined || !/^\d{1,9}$/.test(value.trim())) return 0;
  return Number(value.trim());
}

/** Subjects kept in memory before the oldest are dropped (a dropped bucket restarts full). */
const MAX_BUCKETS = 10_000;

/** In-isolate token buckets, by subject. Insertion order = least recently used first. */
export class LocalLimiter {
  private readonly buckets = new Map<string, Bucket>();

  take(key: string, perMinute: number, now: number): Take {
    const t = takeToken(this.buckets.get(key), perMinute, now);
    this.set(key, t.bucket);
    return t;
  }

  /** The bucket of `key` as last saved (undefined: never seen, or dropped: a full one). */
  get(key: string): Bucket | undefined {
    return this.buckets.get(key);
  }

  /** Saves a bucket as the most recently used. */
  set(key: string, bucket: Bucket): void {
    this.buckets.delete(key);
    this.buckets.set(key, bucket);
    if (this.buckets.size > MAX_BUCKETS) {
      const oldest = this.buckets.keys().next().value;
      if (oldest !== undefined) this.buckets.delete(oldest);
    }
  }
}

const local = new LocalLimiter();

/** Answers 429 RATE_LIMITED when a scoped token's subject is over its rate. Runs after `authenticate`. */
export const rateLimit: MiddlewareHandler<GatewayEnv> = async (c, next) => {
  const p = c.get("principal");
  if (p.admin) return next();
  const key = `sub:${p.sub}`;
  const binding = c.env.RATE_LIMITER;
  if (binding) {
    const { success } = await binding.limit({ key });
    if (!success)
      throw new EdgemqError("RATE_LIMITED", "too many requests for this token; slow down");
    return next();
  }
  const perMinute = perMinuteOf(c.env.RATE_LIMIT_PER_MINUTE);
  if (perMinute === 0) return next();
  const t = local.take(key, perMinute, Date.now());
  if (!t.ok) {
    c.header("Retry-After", String(Math.max(1, Math.ceil(t.retryAfterMs / 1000))));
    throw new EdgemqError(
      "RATE_LIMITED",
      `over ${perMinute} requests a minute for this token; slow down`,
    );
  }
  return next();
};
