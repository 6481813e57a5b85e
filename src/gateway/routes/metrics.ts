/** `GET /metrics`: Prometheus text format, admin token (or METRICS_TOKEN) required. */
import { Hono } from "hono";
import { EdgemqError } from "../../protocol/errors.ts";
import type { GroupQueueStats } from "../../protocol/types.ts";
import { authGate } from "../auth-failures.ts";
import { authenticate, type GatewayEnv, requireAdmin, timingSafeEqual } from "../auth.ts";
import { formatMetrics, METRICS_CONTENT_TYPE, type MetricsSnapshot } from "../metrics.ts";
import { BrokerService, rpc } from "../service.ts";

export const metricsRoutes = new Hono<GatewayEnv>();

metricsRoutes.get("/", async (c) => {
  // Before the scrape token is compared: an address out of attempts learns nothing from it.
  authGate(c);
  const scrapeToken = c.env.METRICS_TOKEN;
  const bearer = /^Bearer ([^\s]+)$/i.exec(c.req.header("authorization") ?? "")?.[1];
  if (!(scrapeToken && bearer && timingSafeEqual(bearer, scrapeToken))) {
    await authenticate(c, async () => {});
    requireAdmin(c);
  }
  const snapshot = await collect(new BrokerService(c.env));
  return c.body(formatMetrics(snapshot), 200, {
    "content-type": METRICS_CONTENT_TYPE,
    "cache-control": "no-store",
  });
});

/**
 * Reads every topic's queue stats and every group's progress. A call that
 * fails (a topic deleted mid-scrape) leaves its series out and is counted,
 * rather than failing the whole scrape.
 */
async function collect(svc: BrokerService): Promise<MetricsSnapshot> {
  let errors = 0;
  const soft = async <T>(p: Promise<T>): Promise<T | null> => {
    try {
      return await p;
    } catch (e) {
      // A topic deleted since the listing is simply gone, not a failure.
      if (!(e instanceof EdgemqError && e.code === "TOPIC_NOT_FOUND")) errors++;
      return null;
    }
  };
  const registry = svc.registry();
  const [topicList, groupList] = await Promise.all([
    rpc(() => registry.listTopics()),
    rpc(() => registry.listGroups()),
  ]);
  const topics = (
    await Promise.all(
      topicList.map(async (t) => {
        const queues = await soft(svc.queueStats(t.topic));
        return queues && { topic: t.topic, queues };
      }),
    )
  ).filter((t) => t !== null);
  const groups = await Promise.all(
    groupList.map(async (g) => {
      const [subscribed, members] = await Promise.all([
        soft(svc.groupTopics(g.group)),
        soft(rpc(() => registry.members(g.group))),
      ]);
      const stats: Record<string, GroupQueueStats[]> = {};
      await Promise.all(
        (subscribed ?? []).map(async (t) => {
          const s = await soft(svc.groupTopicStats(g.group, t));
          if (s) stats[t] = s;
        }),
      );
      return { group: g.group, members: members?.length ?? 0, topics: stats };
    }),
  );
  const pushList = (await soft(rpc(() => registry.listPush()))) ?? [];
  const push = (
    await Promise.all(
      pushList.map(async (p) => {
        const queues = await soft(svc.pushStatsOf(p.topic, p.name));
        return queues && { name: p.name, topic: p.topic, queues };
      }),
    )
  ).filter((p) => p !== null);
  return { topics, groups, push, errors };
}
