import type { QueueShard } from "./broker/queue-shard.ts";
import type { TopicRegistry } from "./registry/topic-registry.ts";
import type { Scheduler } from "./schedules/scheduler.ts";

/** Bindings of the edgemq Worker (see wrangler.toml). */
export interface Env {
  SHARDS: DurableObjectNamespace<QueueShard>;
  REGISTRY: DurableObjectNamespace<TopicRegistry>;
  /** Recurring schedules: one object (src/schedules/scheduler.ts). */
  SCHEDULER: DurableObjectNamespace<Scheduler>;
  /** Bearer token with every permission. */
  ADMIN_TOKEN?: string;
  /** HMAC key for scoped tokens and check-back signatures. */
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
}
