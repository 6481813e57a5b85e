/**
 * What the broker and the registry import of the request checks, under the
 * path they have always used. The checks live in requests/ (one module per
 * request area, and fields.ts for the field checks they are built from); new
 * code imports from there, and this file goes once those imports move.
 */
export type { NormalizedMessage } from "./requests/message.ts";
export {
  checkBacklogBounds,
  defaultGroupConfig,
  type GroupConfigInput,
  type ProducerGroupInput,
  type TopicConfigInput,
} from "./requests/config.ts";
