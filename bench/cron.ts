/**
 * Cron lateness: how long after its fire time a recurring schedule's message
 * is stored (api.md, "Recurring schedules").
 *
 * Runs the real local server (workerd, SQLite Durable Objects on local disk,
 * real alarms) with a 4-queue topic, then two rounds of CRON_SECONDS (default
 * 10) each: one schedule firing every second (`* * * * * *`), then
 * CRON_MANY (default 50) schedules all firing every second (one Scheduler
 * object fires them all from one alarm). Each message's lateness is its
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
async function everything(topic: string): Promise<Stored[]> {
  const all: Stored[] = [];
  for (let q = 0; q < QUEUES; q++) {
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

/** `count` schedules firing every second for SECONDS seconds; their lateness. */
async function measure(count: number) {
  const topic = `cron-${count}-${Date.now().toString(36)}`;
  await client.json("PUT", `/v1/topics/${topic}`, { queues: QUEUES });
  const names = Array.from({ length: count }, (_, i) => `${topic}-s${i}`);
  await Promise.all(
    names.map((name) =>
      client.json("PUT", `/v1/schedules/${name}`, {
        topic,
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
  const lateness = (await everything(topic))
    .map((m) => m.storedAt - Number(m.msgId.slice(m.msgId.lastIndexOf(":") + 1)))
    .sort((a, b) => a - b);
  return {
    schedules: count,
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
  emit("cron", { seconds: SECONDS, queues: QUEUES, one, many });
} finally {
  await bench.close();
}
