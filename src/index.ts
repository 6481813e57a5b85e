import { Hono } from "hono";
import type { Env } from "./env.ts";

export { QueueShard } from "./broker/queue-shard.ts";
export { TopicRegistry } from "./registry/topic-registry.ts";

const app = new Hono<{ Bindings: Env }>();
app.get("/v1/health", (c) => c.json({ ok: true }));
export default app;
