/** Topic admin: create/update, list, describe, delete, purge, route. */
import { Hono } from "hono";
import { EdgemqError } from "../../protocol/errors.ts";
import { parseTopicConfig } from "../../protocol/requests/config.ts";
import { type GatewayEnv, requireTopicAccess } from "../auth.ts";
import { adminOnly, jsonBody, names } from "../http.ts";
import { BrokerService, rpc } from "../service.ts";

export const topicRoutes = new Hono<GatewayEnv>();

topicRoutes.put(
  "/:topic",
  adminOnly,
  names(["topic"]),
  jsonBody(parseTopicConfig, { maxBytes: 64 * 1024, optional: true }),
  async (c) => {
    const { topic } = c.req.valid("param");
    return c.json(await new BrokerService(c.env).putTopic(topic, c.req.valid("json")));
  },
);

topicRoutes.get("/", adminOnly, async (c) => {
  const svc = new BrokerService(c.env);
  return c.json({ topics: await rpc(() => svc.registry().listTopics()) });
});

topicRoutes.get("/:topic", adminOnly, names(["topic"]), async (c) => {
  const { topic } = c.req.valid("param");
  const svc = new BrokerService(c.env);
  const config = await rpc(() => svc.registry().getTopic(topic));
  if (!config) throw new EdgemqError("TOPIC_NOT_FOUND", `topic ${topic} not found`);
  const [queueStats, groups] = await Promise.all([
    svc.queueStats(topic),
    rpc(() => svc.registry().subscribers(topic)),
  ]);
  return c.json({ ...config, queueStats, groups });
});

topicRoutes.delete("/:topic", adminOnly, names(["topic"]), async (c) => {
  const { topic } = c.req.valid("param");
  await new BrokerService(c.env).deleteTopic(topic);
  return c.json({ topic, deleted: true });
});

topicRoutes.post("/:topic/purge", adminOnly, names(["topic"]), async (c) => {
  const { topic } = c.req.valid("param");
  return c.json({ topic, queues: await new BrokerService(c.env).purge(topic) });
});

topicRoutes.get(
  "/:topic/route",
  // Producers and consumers both need the route: publish or subscribe on this topic will do.
  names(["topic"], (c, p) => requireTopicAccess(c, p.topic)),
  async (c) => {
    const { topic } = c.req.valid("param");
    const config = await new BrokerService(c.env).topic(topic);
    return c.json({ topic, queues: config.queues });
  },
);
