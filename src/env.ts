import type { QueueShard } from "./broker/queue-shard.ts";
import type { TopicRegistry } from "./registry/topic-registry.ts";

/** Bindings of the edgemq Worker (see wrangler.toml). */
export interface Env {
  SHARDS: DurableObjectNamespace<QueueShard>;
  REGISTRY: DurableObjectNamespace<TopicRegistry>;
  /** Bearer token with every permission. */
  ADMIN_TOKEN?: string;
  /** HMAC key for scoped tokens and check-back signatures. */
  TOKEN_SECRET?: string;
  /** Comma-separated allowed browser origins. */
  CORS_ORIGINS?: string;
  /**
   * Set by `npm start` only: with no secrets, run open (loopback only) instead
   * of refusing every request as a deployed Worker does.
   */
  EDGEMQ_LOCAL?: string;
}
