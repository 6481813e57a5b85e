/**
 * The edgemq Worker: the gateway (default export), the Durable Object
 * classes, and the RPC entrypoint for Service Bindings.
 */
import { app } from "./gateway/app.ts";

export { QueueShard } from "./broker/queue-shard.ts";
export { TopicRegistry } from "./registry/topic-registry.ts";
export { Scheduler } from "./schedules/scheduler.ts";
export { EdgemqRpc } from "./rpc-entrypoint.ts";

export default app;
