import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env.ts";

/** Topic, group and producer-group configuration. (Being written.) */
export class TopicRegistry extends DurableObject<Env> {}
