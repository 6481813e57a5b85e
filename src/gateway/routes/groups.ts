/** Consumer groups: config, stats, offsets, receive/ack, heartbeat, dead letters. */
import { Hono } from "hono";
import { EdgemqError } from "../../protocol/errors.ts";
import { Limits } from "../../protocol/limits.ts";
import { parseGroupConfig } from "../../protocol/requests/config.ts";
import {
  parseAck,
  parseInvisibility,
  parseNack,
  parseReceive,
} from "../../protocol/requests/consume.ts";
import { parseDlqResend } from "../../protocol/requests/dlq.ts";
import { parseHeartbeat } from "../../protocol/requests/heartbeat.ts";
import { parseCommitOffset, parseResetOffsets } from "../../protocol/requests/offsets.ts";
import { parseLimit } from "../../protocol/requests/query.ts";
import { type Outcome, unwrap } from "../../broker/outcome.ts";
import type { Membership } from "../../registry/topic-registry.ts";
import {
  type GatewayEnv,
  memberOwner,
  requireGroup,
  requireSubscribe,
  waitContext,
} from "../auth.ts";
import { adminOnly, jsonBody, names, namesAndQueue, query } from "../http.ts";
import { BrokerService, rpc } from "../service.ts";

export const groupRoutes = new Hono<GatewayEnv>();

const SMALL = Limits.maxSmallBodyBytes;

/** A path naming a group and a topic: the token must subscribe to the topic as that group. */
const consumer = names(["group", "topic"], (c, p) => requireSubscribe(c, p.topic, p.group));

groupRoutes.put(
  "/:group",
  adminOnly,
  names(["group"]),
  jsonBody(parseGroupConfig, { maxBytes: SMALL, optional: true }),
  async (c) => {
    const { group } = c.req.valid("param");
    return c.json(await new BrokerService(c.env).putGroup(group, c.req.valid("json")));
  },
);

groupRoutes.get("/", adminOnly, async (c) => {
  const svc = new BrokerService(c.env);
  return c.json({ groups: await rpc(() => svc.registry().listGroups()) });
});

groupRoutes.get("/:group", adminOnly, names(["group"]), async (c) => {
  const { group } = c.req.valid("param");
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

groupRoutes.delete("/:group", adminOnly, names(["group"]), async (c) => {
  const { group } = c.req.valid("param");
  await new BrokerService(c.env).deleteGroup(group);
  return c.json({ group, deleted: true });
});

groupRoutes.post(
  "/:group/heartbeat",
  names(["group"], (c, p) => requireGroup(c, p.group)),
  jsonBody(parseHeartbeat, { maxBytes: SMALL }),
  async (c) => {
    const { group } = c.req.valid("param");
    const { clientId, topics } = c.req.valid("json");
    for (const t of topics) requireSubscribe(c, t, group);
    const svc = new BrokerService(c.env);
    await Promise.all(topics.map((t) => svc.topic(t)));
    // A clientId is the sender's own (see TopicRegistry.heartbeat); refusals come back as outcomes.
    const owner = memberOwner(c.get("principal"));
    const outcome = await rpc(
      async (): Promise<Outcome<Membership>> =>
        (await svc.registry().heartbeat(group, clientId, topics, owner)) as Outcome<Membership>,
    );
    return c.json(unwrap(outcome));
  },
);

groupRoutes.put(
  "/:group/topics/:topic/queues/:queue/offset",
  namesAndQueue(["group", "topic"], (c, p) => requireSubscribe(c, p.topic, p.group)),
  jsonBody(parseCommitOffset, { maxBytes: SMALL }),
  async (c) => {
    const { group, topic, queue } = c.req.valid("param");
    const { offset } = c.req.valid("json");
    await new BrokerService(c.env).commitOffset(group, topic, queue, offset);
    return c.json({ group, topic, queue, offset });
  },
);

groupRoutes.get("/:group/topics/:topic/offsets", consumer, async (c) => {
  const { group, topic } = c.req.valid("param");
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

groupRoutes.post(
  "/:group/topics/:topic/offsets/reset",
  consumer,
  jsonBody(parseResetOffsets, { maxBytes: SMALL }),
  async (c) => {
    const { group, topic } = c.req.valid("param");
    const svc = new BrokerService(c.env);
    return c.json({ offsets: await svc.resetOffsets(group, topic, c.req.valid("json")) });
  },
);

groupRoutes.post(
  "/:group/topics/:topic/receive",
  consumer,
  jsonBody(parseReceive, { maxBytes: SMALL, optional: true }),
  async (c) => {
    const { group, topic } = c.req.valid("param");
    const svc = new BrokerService(c.env);
    return c.json(await svc.receive(group, topic, c.req.valid("json"), waitContext(c)));
  },
);

// Settles take 64 KiB like every small call (security.md); the SDK splits larger ones.
groupRoutes.post(
  "/:group/topics/:topic/ack",
  consumer,
  jsonBody(parseAck, { maxBytes: SMALL }),
  async (c) => {
    const { group, topic } = c.req.valid("param");
    const { receipts } = c.req.valid("json");
    return c.json(await new BrokerService(c.env).settle(group, topic, receipts, false));
  },
);

groupRoutes.post(
  "/:group/topics/:topic/nack",
  consumer,
  jsonBody(parseNack, { maxBytes: SMALL }),
  async (c) => {
    const { group, topic } = c.req.valid("param");
    const { receipts, delayMs } = c.req.valid("json");
    const nack = delayMs === undefined ? {} : { delayMs };
    return c.json(await new BrokerService(c.env).settle(group, topic, receipts, nack));
  },
);

groupRoutes.post(
  "/:group/topics/:topic/invisibility",
  consumer,
  jsonBody(parseInvisibility, { maxBytes: SMALL }),
  async (c) => {
    const { group, topic } = c.req.valid("param");
    const { receipt, invisibleMs } = c.req.valid("json");
    const svc = new BrokerService(c.env);
    return c.json(await svc.changeInvisibility(group, topic, receipt, invisibleMs));
  },
);

groupRoutes.get(
  "/:group/dlq/messages",
  adminOnly,
  names(["group"]),
  query(parseLimit),
  async (c) => {
    const { group } = c.req.valid("param");
    const { limit } = c.req.valid("query");
    return c.json({ messages: await new BrokerService(c.env).deadLetters(group, limit) });
  },
);

groupRoutes.post(
  "/:group/dlq/resend",
  adminOnly,
  names(["group"]),
  jsonBody(parseDlqResend, { maxBytes: Limits.maxBatchBytes, optional: true }),
  async (c) => {
    const { group } = c.req.valid("param");
    const { msgIds } = c.req.valid("json");
    return c.json({ resent: await new BrokerService(c.env).resendDeadLetters(group, msgIds) });
  },
);
