/** Topic admin: create/update, list, describe, delete, purge, route. */
import { Hono } from "hono";
import { EdgemqError } from "../../protocol/errors.ts";
import { parseTopicConfig } from "../../protocol/validate.ts";
import { type GatewayEnv, requireAdmin, requireTopicAccess } from "../auth.ts";
import { nameParam, readJson } from "../http.ts";
import { BrokerService, rpc } from "../service.ts";

export const topicRoutes = new Hono<GatewayEnv>();

topicRoutes.put("/:topic", async (c) => {
  requireAdmin(c);
  const topic = nameParam(c, "topic");
  const input = parseTopicConfig(await readJson(c, 64 * 1024, true));
  return c.json(await new BrokerService(c.env).putTopic(topic, input));
});

topicRoutes.get("/", async (c) => {
  requireAdmin(c);
  const svc = new BrokerService(c.env);
  return c.json({ topics: await rpc(() => svc.registry().listTopics()) });
});

topicRoutes.get("/:topic", async (c) => {
  requireAdmin(c);
  const topic = nameParam(c, "topic");
  const svc = new BrokerService(c.env);
  const config = await rpc(() => svc.registry().getTopic(topic));
  if (!config) throw new EdgemqError("TOPIC_NOT_FOUND", `topic ${topic} not found`);
  const [queueStats, groups] = await Promise.all([
    svc.queueStats(topic),
    rpc(() => svc.registry().subscribers(topic)),
  ]);
  return c.json({ ...config, queueStats, groups });
});

topicRoutes.delete("/:topic", async (c) => {
  requireAdmin(c);
  const topic = nameParam(c, "topic");
  await new BrokerService(c.env).deleteTopic(topic);
  return c.json({ topic, deleted: true });
});

topicRoutes.post("/:topic/purge", async (c) => {
  requireAdmin(c);
  const topic = nameParam(c, "topic");
  return c.json({ topic, queues: await new BrokerService(c.env).purge(topic) });
});

topicRoutes.get("/:topic/route", async (c) => {
  const topic = nameParam(c, "topic");
  // Producers and consumers both need the route: publish or subscribe on this topic will do.
  requireTopicAccess(c, topic);
  const config = await new BrokerService(c.env).topic(topic);
  return c.json({ topic, queues: config.queues });
});
