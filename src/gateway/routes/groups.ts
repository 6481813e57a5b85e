/** Consumer groups: config, stats, offsets, receive/ack, heartbeat, dead letters. */
import { Hono } from "hono";
import { EdgemqError, badRequest } from "../../protocol/errors.ts";
import { Limits } from "../../protocol/limits.ts";
import { intField, isObject, parseGroupConfig } from "../../protocol/validate.ts";
import {
  type GatewayEnv,
  requireAdmin,
  requireGroup,
  requireSubscribe,
  senderOf,
} from "../auth.ts";
import { nameParam, pathInt, queryInt, readJson } from "../http.ts";
import { type Outcome, unwrap } from "../../broker/outcome.ts";
import type { Membership } from "../../registry/topic-registry.ts";
import { BrokerService, rpc } from "../service.ts";

export const groupRoutes = new Hono<GatewayEnv>();

const SMALL = Limits.maxSmallBodyBytes;

function objectBody(body: unknown): Record<string, unknown> {
  if (body === undefined) return {};
  if (!isObject(body)) throw badRequest("body must be an object");
  return body;
}

groupRoutes.put("/:group", async (c) => {
  requireAdmin(c);
  const group = nameParam(c, "group");
  const input = parseGroupConfig(await readJson(c, SMALL, true));
  return c.json(await new BrokerService(c.env).putGroup(group, input));
});

groupRoutes.get("/", async (c) => {
  requireAdmin(c);
  const svc = new BrokerService(c.env);
  return c.json({ groups: await rpc(() => svc.registry().listGroups()) });
});

groupRoutes.get("/:group", async (c) => {
  requireAdmin(c);
  const group = nameParam(c, "group");
  const svc = new BrokerService(c.env);
  const [config, topics, members] = await Promise.all([
    rpc(() => svc.registry().getGroup(group)),
    svc.groupTopics(group),
    rpc(() => svc.registry().members(group)),
  ]);
  // Reading a group never creates it (receive, pull and commit do).
  if (!config) throw new EdgemqError("GROUP_NOT_FOUND", `group ${group} not found`);
  const stats: Record<string, unknown> = {};
  await Promise.all(
    topics.map(async (t) => {
      stats[t] = await svc.groupTopicStats(group, t).catch(() => []);
    }),
  );
  return c.json({ ...config, topics: stats, members });
});

groupRoutes.delete("/:group", async (c) => {
  requireAdmin(c);
  const group = nameParam(c, "group");
  const svc = new BrokerService(c.env);
  await rpc(() => svc.registry().deleteGroup(group));
  return c.json({ group, deleted: true });
});

groupRoutes.post("/:group/heartbeat", async (c) => {
  const group = nameParam(c, "group");
  requireGroup(c, group);
  const body = objectBody(await readJson(c, SMALL));
  const clientId = body.clientId;
  if (
    typeof clientId !== "string" ||
    clientId.length === 0 ||
    clientId.length > 256 ||
    !clientId.isWellFormed()
  ) {
    throw badRequest("clientId must be a non-empty string");
  }
  const topics = body.topics;
  if (
    !Array.isArray(topics) ||
    topics.length > 256 ||
    !topics.every((t) => typeof t === "string" && Limits.namePattern.test(t))
  ) {
    throw badRequest("topics must be an array of topic names");
  }
  for (const t of topics as string[]) requireSubscribe(c, t, group);
  const svc = new BrokerService(c.env);
  await Promise.all((topics as string[]).map((t) => svc.topic(t)));
  const owner = senderOf(c.get("principal"));
  // The stub's type of a union answer is unwieldy: name what the registry returns.
  const outcome = await rpc(
    async (): Promise<Outcome<Membership>> =>
      (await svc
        .registry()
        .heartbeat(group, clientId, topics as string[], owner)) as Outcome<Membership>,
  );
  return c.json(unwrap(outcome));
});

groupRoutes.put("/:group/topics/:topic/queues/:queue/offset", async (c) => {
  const group = nameParam(c, "group");
  const topic = nameParam(c, "topic");
  requireSubscribe(c, topic, group);
  const queue = pathInt(c, "queue", 0, Limits.maxQueues - 1);
  const body = objectBody(await readJson(c, SMALL));
  const offset = intField(body, "offset", 0, Number.MAX_SAFE_INTEGER);
  if (offset === undefined) throw badRequest("offset is required");
  await new BrokerService(c.env).commitOffset(group, topic, queue, offset);
  return c.json({ group, topic, queue, offset });
});

groupRoutes.get("/:group/topics/:topic/offsets", async (c) => {
  const group = nameParam(c, "group");
  const topic = nameParam(c, "topic");
  requireSubscribe(c, topic, group);
  const stats = await new BrokerService(c.env).groupTopicStats(group, topic);
  return c.json({
    offsets: stats.map((s) => ({
      queue: s.queue,
      offset: s.offset,
      maxOffset: s.maxOffset,
      lag: s.lag,
    })),
  });
});

groupRoutes.post("/:group/topics/:topic/offsets/reset", async (c) => {
  const group = nameParam(c, "group");
  const topic = nameParam(c, "topic");
  requireSubscribe(c, topic, group);
  const body = objectBody(await readJson(c, SMALL));
  let to: { timestamp: number } | { to: "earliest" | "latest" };
  if (body.timestamp !== undefined && body.to === undefined) {
    to = { timestamp: intField(body, "timestamp", 0, 8.64e15)! };
  } else if (body.to !== undefined && body.timestamp === undefined) {
    if (body.to !== "earliest" && body.to !== "latest")
      throw badRequest('to must be "earliest" or "latest"');
    to = { to: body.to };
  } else {
    throw badRequest("give exactly one of timestamp or to");
  }
  return c.json({ offsets: await new BrokerService(c.env).resetOffsets(group, topic, to) });
});

groupRoutes.post("/:group/topics/:topic/receive", async (c) => {
  const group = nameParam(c, "group");
  const topic = nameParam(c, "topic");
  requireSubscribe(c, topic, group);
  const body = objectBody(await readJson(c, SMALL, true));
  const filter = body.filter;
  if (
    filter !== undefined &&
    (typeof filter !== "string" || filter.length > Limits.maxFilterBytes)
  ) {
    throw badRequest("filter must be a string");
  }
  return c.json(
    await new BrokerService(c.env).receive(group, topic, {
      max: intField(body, "max", Limits.minMax, Limits.maxMax) ?? Limits.defaultMax,
      invisibleMs:
        intField(body, "invisibleMs", Limits.minInvisibleMs, Limits.maxInvisibleMs) ??
        Limits.defaultInvisibleMs,
      waitMs: intField(body, "waitMs", 0, Limits.maxWaitMs) ?? Limits.defaultWaitMs,
      ...(filter !== undefined && { filter }),
    }),
  );
});

groupRoutes.post("/:group/topics/:topic/ack", async (c) => {
  const group = nameParam(c, "group");
  const topic = nameParam(c, "topic");
  requireSubscribe(c, topic, group);
  const body = objectBody(await readJson(c, SMALL));
  return c.json(await new BrokerService(c.env).settle(group, topic, body.receipts, false));
});

groupRoutes.post("/:group/topics/:topic/nack", async (c) => {
  const group = nameParam(c, "group");
  const topic = nameParam(c, "topic");
  requireSubscribe(c, topic, group);
  const body = objectBody(await readJson(c, SMALL));
  const delayMs = intField(body, "delayMs", 0, Limits.maxDelayMs);
  return c.json(
    await new BrokerService(c.env).settle(
      group,
      topic,
      body.receipts,
      delayMs === undefined ? {} : { delayMs },
    ),
  );
});

groupRoutes.post("/:group/topics/:topic/invisibility", async (c) => {
  const group = nameParam(c, "group");
  const topic = nameParam(c, "topic");
  requireSubscribe(c, topic, group);
  const body = objectBody(await readJson(c, SMALL));
  const invisibleMs = intField(body, "invisibleMs", Limits.minInvisibleMs, Limits.maxInvisibleMs);
  if (invisibleMs === undefined) throw badRequest("invisibleMs is required");
  return c.json(
    await new BrokerService(c.env).changeInvisibility(group, topic, body.receipt, invisibleMs),
  );
});

groupRoutes.get("/:group/dlq/messages", async (c) => {
  requireAdmin(c);
  const group = nameParam(c, "group");
  const limit = queryInt(c, "limit", 1, Limits.maxQueryLimit, Limits.defaultQueryLimit);
  return c.json({ messages: await new BrokerService(c.env).deadLetters(group, limit) });
});

groupRoutes.post("/:group/dlq/resend", async (c) => {
  requireAdmin(c);
  const group = nameParam(c, "group");
  const body = objectBody(await readJson(c, Limits.maxBatchBytes, true));
  const ids = body.msgIds;
  if (ids !== undefined && (!Array.isArray(ids) || !ids.every((x) => typeof x === "string"))) {
    throw badRequest("msgIds must be an array of strings");
  }
  const list = ids === undefined || (ids as string[]).length === 0 ? null : (ids as string[]);
  return c.json({ resent: await new BrokerService(c.env).resendDeadLetters(group, list) });
});
