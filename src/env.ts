import type { QueueShard } from "./broker/queue-shard.ts";
import type { TopicRegistry } from "./registry/topic-registry.ts";

/** Bindings of the edgemq Worker (see wrangler.toml). */
export interface Env {
  SHARDS: DurableObjectNamespace<QueueShard>;
  REGISTRY: DurableObjectNamespace<TopicRegistry>;
  /** Bearer token with every permission. */
  ADMIN_TOKEN?: string;
  /** HMAC key for scoped tokens (never for outbound requests: receivers have their own secrets). */
  TOKEN_SECRET?: string;
  /**
   * Optional bearer token that may read `GET /metrics` only (for a Prometheus
   * scraper); the ADMIN_TOKEN always may.
   */
  METRICS_TOKEN?: string;
  /** Comma-separated allowed browser origins. */
  CORS_ORIGINS?: string;
  /**
   * Set by `npm start` only: with no secrets, run open (loopback only) instead
   * of refusing every request as a deployed Worker does.
   */
  EDGEMQ_LOCAL?: string;
  /** Cloudflare's rate limiting binding (`[[ratelimits]]`): per-token limits where deployed. */
  RATE_LIMITER?: RateLimit;
  /**
   * Requests a minute per scoped-token subject when `RATE_LIMITER` is not
   * bound (`npm start`): an in-isolate token bucket. Unset or "0": off.
   */
  RATE_LIMIT_PER_MINUTE?: string;
  /**
   * Failed authentications allowed per client address and minute (a burst of
   * as many, refilled at that rate) before the address is answered 429.
   * Default 60; "0": off. See src/gateway/auth-failures.ts.
   */
  AUTH_FAILURES_PER_MINUTE?: string;
  /** Deployed: a rate limiting binding counting failed authentications per address across isolates. */
  AUTH_FAILURE_LIMITER?: RateLimit;
}
