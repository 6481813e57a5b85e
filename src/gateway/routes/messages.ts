/** Send, recall, pull and query: the message paths under a topic. */
import { Hono } from "hono";
import { Limits } from "../../protocol/limits.ts";
import { newMsgId } from "../../protocol/msg-id.ts";
import { parsePull, parsePullGroup } from "../../protocol/requests/pull.ts";
import { parseMessageQuery } from "../../protocol/requests/query.ts";
import { parseSend, parseSendQuery } from "../../protocol/requests/send.ts";
import { parseTraceContext } from "../../protocol/trace.ts";
import {
  type GatewayEnv,
  requireAdmin,
  requirePublish,
  requireSubscribe,
  senderSpace,
  waitContext,
} from "../auth.ts";
import { jsonBody, names, namesAndQueue, query } from "../http.ts";
import { BrokerService } from "../service.ts";

export const messageRoutes = new Hono<GatewayEnv>();

messageRoutes.post(
  "/:topic/messages",
  names(["topic"], (c, p) => requirePublish(c, p.topic)),
  query(parseSendQuery),
  jsonBody(
    (body, c) => {
      // The request's trace context applies to every message that has none (api.md, "Trace context").
      const trace = parseTraceContext(
        c.req.header("traceparent"),
        c.req.header("tracestate"),
        "header",
      );
      return parseSend(body, Date.now(), newMsgId, trace);
    },
    { maxBytes: Limits.maxBatchBytes },
  ),
  async (c) => {
    const { topic } = c.req.valid("param");
    const { queue } = c.req.valid("query");
    const sender = senderSpace(c.get("principal"));
    return c.json(await new BrokerService(c.env).send(topic, c.req.valid("json"), queue, sender));
  },
);

messageRoutes.delete(
  "/:topic/messages/:msgId",
  names(["topic"], (c, p) => requirePublish(c, p.topic)),
  async (c) => {
    const { topic } = c.req.valid("param");
    const msgId = c.req.param("msgId");
    await new BrokerService(c.env).recall(topic, msgId, senderSpace(c.get("principal")));
    return c.json({ msgId, recalled: true });
  },
);

messageRoutes.get("/:topic/messages/:msgId", names(["topic"], requireAdmin), async (c) => {
  const { topic } = c.req.valid("param");
  const sender = senderSpace(c.get("principal"));
  return c.json(await new BrokerService(c.env).findById(topic, c.req.param("msgId"), sender));
});

messageRoutes.get(
  "/:topic/messages",
  names(["topic"], requireAdmin),
  query(parseMessageQuery),
  async (c) => {
    const { topic } = c.req.valid("param");
    const { by, limit } = c.req.valid("query");
    return c.json({ messages: await new BrokerService(c.env).find(topic, by, limit) });
  },
);

messageRoutes.get(
  "/:topic/queues/:queue/messages",
  // The group a pull names is in its query; the token is checked against it too.
  namesAndQueue(["topic"], (c, p) => requireSubscribe(c, p.topic, parsePullGroup(c.req.query()))),
  query(parsePull),
  async (c) => {
    const { topic, queue } = c.req.valid("param");
    const svc = new BrokerService(c.env);
    return c.json(await svc.pull(topic, queue, c.req.valid("query"), waitContext(c)));
  },
);
