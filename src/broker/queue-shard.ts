import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env.ts";

/** One queue of one topic: the broker. (Being written.) */
export class QueueShard extends DurableObject<Env> {}
