/**
 * Cron lateness: how long after its fire time a recurring schedule's message
 * is stored (api.md, "Recurring schedules").
 *
 * Runs the real local server (workerd, SQLite Durable Objects on local disk,
 * real alarms), then three rounds of CRON_SECONDS (default 10) each: one
 * schedule firing every second (`* * * * * *`) to a 4-queue topic; CRON_MANY
 * (default 50) schedules all firing every second to that topic (one Scheduler
 * object fires them all from one alarm, in one send per topic); the same
 * number each sending to a topic of its own (one send each). Each message's lateness is its
 * `storedAt` (the shard's clock) minus its fire time (from its msgId
 * `{name}:{fireTimeMs}`); same machine, same clock. Fire times a late alarm
 * folded into a later fire (the missed-fire rule) are counted as `folded`.
 *
 *   node bench/cron.ts
 *   CRON_SECONDS=30 CRON_MANY=200 node bench/cron.ts
 *
 * Prints one JSON line.
 */
import { startBenchServer } from "./lib/servers.ts";
import { quantile, round, sleep } from "./lib/load.ts";
import { emit } from "./lib/report.ts";

const SECONDS = Number(process.env.CRON_SECONDS ?? 10);
const MANY = Number(process.env.CRON_MANY ?? 50);
const QUEUES = 4;

const bench = await startBenchServer();
const { client } = bench;

interface Stored {
  msgId: string;
  storedAt: number;
}

/** Every message of the topic, pulled queue by queue from offset 0. */
async function everything(topic: string, queues: number): Promise<Stored[]> {
  const all: Stored[] = [];
  for (let q = 0; q < queues; q++) {
    for (let offset = 0; ;) {
      const r = await client.json<{ messages: Stored[]; nextOffset: number }>(
        "GET",
        `/v1/topics/${topic}/queues/${q}/messages?offset=${offset}&max=1000`,
      );
      all.push(...r.messages);
      if (r.messages.length === 0) break;
      offset = r.nextOffset;
    }
  }
  return all;
}

/**
 * `count` schedules firing every second for SECONDS seconds; their lateness.
 * `spread`: each schedule sends to a topic of its own (one queue), so no two
 * fires share a send; otherwise all send to one 4-queue topic.
 */
async function measure(count: number, spread = false) {
  const base = `cron-${count}${spread ? "x" : ""}-${Date.now().toString(36)}`;
  const names = Array.from({ length: count }, (_, i) => `${base}-s${i}`);
  const topicOf = (i: number) => (spread ? `${base}-t${i}` : base);
  const queues = spread ? 1 : QUEUES;
  const topics = [...new Set(names.map((_, i) => topicOf(i)))];
  await Promise.all(topics.map((t) => client.json("PUT", `/v1/topics/${t}`, { queues })));
  await Promise.all(
    names.map((name, i) =>
      client.json("PUT", `/v1/schedules/${name}`, {
        topic: topicOf(i),
        cron: "* * * * * *",
        message: { body: "tick" },
      }),
    ),
  );
  await sleep(SECONDS * 1000);
  const infos = await Promise.all(
    names.map((name) => client.json<{ missedFires: number }>("GET", `/v1/schedules/${name}`)),
  );
  await Promise.all(names.map((name) => client.json("DELETE", `/v1/schedules/${name}`)));
  const stored = (await Promise.all(topics.map((t) => everything(t, queues)))).flat();
  const lateness = stored
    .map((m) => m.storedAt - Number(m.msgId.slice(m.msgId.lastIndexOf(":") + 1)))
    .sort((a, b) => a - b);
  return {
    schedules: count,
    topics: topics.length,
    fires: lateness.length,
    firesPerSecond: round(lateness.length / SECONDS),
    folded: infos.reduce((n, s) => n + s.missedFires, 0),
    latenessMs: {
      p50: quantile(lateness, 0.5),
      p99: quantile(lateness, 0.99),
      max: lateness.at(-1) ?? null,
      min: lateness[0] ?? null,
    },
  };
}

try {
  const one = await measure(1);
  const many = await measure(MANY);
  const spread = await measure(MANY, true);
  emit("cron", { roundSeconds: SECONDS, queues: QUEUES, one, many, spread });
} finally {
  await bench.close();
}
