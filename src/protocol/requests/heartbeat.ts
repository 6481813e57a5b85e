/** `POST /v1/groups/{group}/heartbeat`: a member's liveness and the topics it consumes. */
import { badRequest } from "../errors.ts";
import { Limits } from "../limits.ts";
import { objectBody } from "./fields.ts";

export interface HeartbeatRequest {
  clientId: string;
  topics: string[];
}

/** Longest clientId and most topics one member may name. */
const MAX_CLIENT_ID = 256;
const MAX_TOPICS = 256;

/** Reads `{"clientId", "topics": [...]}` of a heartbeat. */
export function parseHeartbeat(body: unknown): HeartbeatRequest {
  const b = objectBody(body);
  const clientId = b.clientId;
  if (
    typeof clientId !== "string" ||
    clientId.length === 0 ||
    clientId.length > MAX_CLIENT_ID ||
    !clientId.isWellFormed()
  ) {
    throw badRequest("clientId must be a non-empty string");
  }
  const topics = b.topics;
  if (
    !Array.isArray(topics) ||
    topics.length > MAX_TOPICS ||
    !topics.every((t) => typeof t === "string" && Limits.namePattern.test(t))
  ) {
    throw badRequest("topics must be an array of topic names");
  }
  return { clientId, topics: topics as string[] };
}
