import { env, exports } from "cloudflare:workers";

export const ADMIN = { authorization: "Bearer test-admin", "content-type": "application/json" };

/** Calls the gateway in the runtime, as an admin unless other headers are given. */
export async function api(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = ADMIN,
): Promise<{ status: number; body: any }> {
  const init: RequestInit = { method, headers };
  if (body !== undefined) init.body = typeof body === "string" ? body : JSON.stringify(body);
  const res = await exports.default.fetch(new Request(`http://edgemq.test${path}`, init));
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

let n = 0;
/** A topic or group name unique to this test. */
export function unique(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${(n++).toString(36)}`;
}

export async function createTopic(
  config: Record<string, unknown> = {},
  prefix = "t",
): Promise<string> {
  const topic = unique(prefix);
  const r = await api("PUT", `/v1/topics/${topic}`, config);
  if (r.status !== 200) throw new Error(`create topic: ${JSON.stringify(r.body)}`);
  return topic;
}

export function shardStub(topic: string, queue: number) {
  return env.SHARDS.get(env.SHARDS.idFromName(`${topic}#${queue}`));
}
