/** Send, recall, pull and query: the message paths under a topic. */
import { Hono } from "hono";
import { badRequest } from "../../protocol/errors.ts";
import { Limits } from "../../protocol/limits.ts";
import {
  type GatewayEnv,
  requireAdmin,
  requirePublish,
  requireSubscribe,
  senderSpace,
  waitContext,
} from "../auth.ts";
import { nameParam, pathInt, queryInt, readJson } from "../http.ts";
import { BrokerService } from "../service.ts";
import { checkName } from "../../protocol/validate.ts";

export const messageRoutes = new Hono<GatewayEnv>();

messageRoutes.post("/:topic/messages", async (c) => {
  const topic = nameParam(c, "topic");
  requirePublish(c, topic);
  const queue = queryInt(c, "queue", 0, Limits.maxQueues - 1);
  const body = await readJson(c, Limits.maxBatchBytes);
  return c.json(
    await new BrokerService(c.env).send(topic, body, queue, senderSpace(c.get("principal"))),
  );
});

messageRoutes.delete("/:topic/messages/:msgId", async (c) => {
  const topic = nameParam(c, "topic");
  requirePublish(c, topic);
  const msgId = c.req.param("msgId");
  await new BrokerService(c.env).recall(topic, msgId, senderSpace(c.get("principal")));
  return c.json({ msgId, recalled: true });
});

messageRoutes.get("/:topic/messages/:msgId", async (c) => {
  const topic = nameParam(c, "topic");
  requireAdmin(c);
  const sender = senderSpace(c.get("principal"));
  return c.json(await new BrokerService(c.env).findById(topic, c.req.param("msgId"), sender));
});

messageRoutes.get("/:topic/messages", async (c) => {
  const topic = nameParam(c, "topic");
  requireAdmin(c);
  const limit = queryInt(c, "limit", 1, Limits.maxQueryLimit, Limits.defaultQueryLimit);
  const key = c.req.query("key");
  const svc = new BrokerService(c.env);
  if (key !== undefined) {
    if (key.length === 0 || key.length > Limits.maxKeyBytes)
      throw badRequest("key must be 1..256 characters");
    return c.json({ messages: await svc.find(topic, { key }, limit) });
  }
  const from = queryInt(c, "from", 0, 8.64e15);
  const to = queryInt(c, "to", 0, 8.64e15);
  if (from === undefined || to === undefined) throw badRequest("give key, or from and to");
  if (to < from) throw badRequest("to must not be before from");
  return c.json({ messages: await svc.find(topic, { from, to }, limit) });
});

messageRoutes.get("/:topic/queues/:queue/messages", async (c) => {
  const topic = nameParam(c, "topic");
  const groupParam = c.req.query("group");
  const group = groupParam === undefined ? undefined : checkName(groupParam, "group");
  requireSubscribe(c, topic, group);
  const queue = pathInt(c, "queue", 0, Limits.maxQueues - 1);
  const offset = queryInt(c, "offset", 0, Number.MAX_SAFE_INTEGER);
  const max = queryInt(c, "max", Limits.minMax, Limits.maxMax, Limits.defaultMax);
  const waitMs = queryInt(c, "waitMs", 0, Limits.maxWaitMs, Limits.defaultWaitMs);
  const filter = c.req.query("filter");
  if (filter !== undefined && filter.length > Limits.maxFilterBytes)
    throw badRequest("filter is too long");
  return c.json(
    await new BrokerService(c.env).pull(
      topic,
      queue,
      {
        ...(offset !== undefined && { offset }),
        ...(group !== undefined && { group }),
        ...(filter !== undefined && { filter }),
        max,
        waitMs,
      },
      waitContext(c),
    ),
  );
});
