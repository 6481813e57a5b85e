import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ADMIN, api, createTopic, unique } from "./helpers.ts";
import { savedCounters } from "./storage-sql.ts";
import { bearer, mint } from "./token-helpers.ts";

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * Parses Prometheus text format 0.0.4 strictly enough to catch mistakes:
 * every sample belongs to a family declared by a TYPE line before it, label
 * values are quoted and escaped, values are numbers.
 */
function parseMetrics(text: string): { samples: Sample[]; types: Map<string, string> } {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  expect(text.endsWith("\n")).toBe(true);
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const type =
      /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) {
      expect(types.has(type[1]!), `duplicate TYPE ${type[1]}`).toBe(false);
      types.set(type[1]!, type[2]!);
      continue;
    }
    if (line.startsWith("# HELP ")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    expect(m, `bad sample line: ${line}`).not.toBeNull();
    const [, name, labelText, value] = m!;
    expect(types.has(name!), `sample before its TYPE: ${line}`).toBe(true);
    const labels: Record<string, string> = {};
    if (labelText) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/gy;
      let lm: RegExpExecArray | null;
      let end = 0;
      while ((lm = re.exec(labelText))) {
        labels[lm[1]!] = lm[2]!.replace(/\\n/g, "\n").replace(/\\"/g, '"').replace(/\\\\/g, "\\");
        end = re.lastIndex;
      }
      expect(end, `bad labels: ${labelText}`).toBe(labelText.length);
    }
    expect(Number.isNaN(Number(value)) && value !== "NaN", `bad value: ${line}`).toBe(false);
    samples.push({ name: name!, labels, value: Number(value) });
  }
  return { samples, types };
}

async function send(topic: string, bodies: string[], queue?: number): Promise<void> {
  const q = queue === undefined ? "" : `?queue=${queue}`;
  const r = await api("POST", `/v1/topics/${topic}/messages${q}`, {
    messages: bodies.map((body) => ({ body })),
  });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
}

async function receive(
  group: string,
  topic: string,
  body: Record<string, unknown> = {},
): Promise<any[]> {
  const r = await api("POST", `/v1/groups/${group}/topics/${topic}/receive`, body);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.messages;
}

async function nack(
  group: string,
  topic: string,
  receipts: string[],
  delayMs?: number,
): Promise<void> {
  const r = await api("POST", `/v1/groups/${group}/topics/${topic}/nack`, { receipts, delayMs });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
}

async function scrape(headers: Record<string, string> = ADMIN) {
  const res = await exports.default.fetch(new Request("http://edgemq.test/metrics", { headers }));
  return {
    status: res.status,
    contentType: res.headers.get("content-type"),
    text: await res.text(),
  };
}

/** Sum of a metric's samples whose labels include `match`. */
function total(samples: Sample[], name: string, match: Record<string, string>): number {
  return samples
    .filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v))
    .reduce((n, s) => n + s.value, 0);
}

describe("GET /metrics", () => {
  it("refuses a scrape without a token, and one with a scoped token", async () => {
    const none = await scrape({});
    expect(none.status).toBe(401);
    expect(JSON.parse(none.text).error.code).toBe("UNAUTHORIZED");
    const token = await mint({ sub: "app", publish: ["*"], subscribe: ["*"], groups: ["*"] });
    const scoped = await scrape(bearer(token));
    expect(scoped.status).toBe(403);
    expect(JSON.parse(scoped.text).error.code).toBe("FORBIDDEN");
  });

  it("answers Prometheus text with per-queue send and delivery counters and backlog", async () => {
    const topic = await createTopic({ queues: 2 });
    await send(topic, ["a", "bb", "ccc"], 0);
    await send(topic, ["dddd"], 1);
    const pulled = await api("GET", `/v1/topics/${topic}/queues/0/messages?offset=0&max=10`);
    expect(pulled.body.messages).toHaveLength(3);
    // A pull that finds nothing delivers nothing.
    await api("GET", `/v1/topics/${topic}/queues/0/messages?offset=3`);
    const group = unique("g");
    expect(await receive(group, topic, { max: 1 })).toHaveLength(1);

    const r = await scrape();
    expect(r.status).toBe(200);
    expect(r.contentType).toBe("text/plain; version=0.0.4; charset=utf-8");
    const { samples, types } = parseMetrics(r.text);
    expect(types.get("edgemq_messages_sent_total")).toBe("counter");
    expect(types.get("edgemq_backlog_messages")).toBe("gauge");
    expect(total(samples, "edgemq_messages_sent_total", { topic, queue: "0" })).toBe(3);
    expect(total(samples, "edgemq_messages_sent_total", { topic, queue: "1" })).toBe(1);
    expect(
      total(samples, "edgemq_messages_delivered_total", { topic, queue: "0" }),
    ).toBeGreaterThanOrEqual(3);
    expect(total(samples, "edgemq_messages_delivered_total", { topic })).toBe(4);
    expect(total(samples, "edgemq_backlog_messages", { topic })).toBe(4);
    expect(total(samples, "edgemq_backlog_bytes", { topic, queue: "1" })).toBeGreaterThan(0);
    expect(total(samples, "edgemq_topic_queues", { topic })).toBe(2);
    expect(total(samples, "edgemq_queue_max_offset", { topic, queue: "0" })).toBe(3);
    expect(total(samples, "edgemq_group_lag", { group, topic })).toBe(4);
    expect(total(samples, "edgemq_group_inflight_messages", { group, topic })).toBe(1);
    expect(total(samples, "edgemq_scrape_errors", {})).toBe(0);
  });

  it("counts dropped, expired, scheduled, retrying and dead-lettered messages", async () => {
    const topic = await createTopic({
      queues: 1,
      maxBacklogMessages: 1,
      overflowPolicy: "drop-oldest",
    });
    await send(topic, ["one", "two", "three"]);
    const late = await api("POST", `/v1/topics/${topic}/messages`, {
      messages: [
        { body: "late", expireAt: Date.now() - 1000 },
        { body: "later", delayMs: 600_000 },
      ],
    });
    expect(late.body.results.map((x: { status: string }) => x.status)).toEqual([
      "expired",
      "scheduled",
    ]);
    const retry = unique("retry");
    const [m] = await receive(retry, topic);
    await nack(retry, topic, [m.receipt], 600_000);
    const dead = unique("dead");
    await api("PUT", `/v1/groups/${dead}`, { maxReconsumeTimes: 0 });
    const [d] = await receive(dead, topic);
    await nack(dead, topic, [d.receipt]);

    const { samples } = parseMetrics((await scrape()).text);
    expect(total(samples, "edgemq_messages_dropped_total", { topic })).toBe(2);
    expect(total(samples, "edgemq_messages_expired_total", { topic })).toBe(1);
    expect(total(samples, "edgemq_scheduled_messages", { topic })).toBe(1);
    expect(total(samples, "edgemq_backlog_messages", { topic })).toBe(1);
    expect(total(samples, "edgemq_group_retry_messages", { group: retry, topic })).toBe(1);
    expect(total(samples, "edgemq_group_dlq_messages", { group: dead, topic })).toBe(1);
    expect(total(samples, "edgemq_group_dlq_messages", { group: retry, topic })).toBe(0);
  });

  it("keeps the sent and delivered counters in the shard's meta table, so they survive a restart", async () => {
    const topic = await createTopic({ queues: 1 });
    await send(topic, ["x", "y"]);
    await api("GET", `/v1/topics/${topic}/queues/0/messages?offset=1`);
    // A pull writes nothing itself (its answer waits for no commit): its count is
    // saved with the shard's next write (here an offset commit), or within a second.
    await api("PUT", `/v1/groups/${topic}-g/topics/${topic}/queues/0/offset`, { offset: 2 });
    const stored = await savedCounters(topic, ["sent", "delivered"]);
    expect(stored).toEqual({ sent: 2, delivered: 1 });
    const described = await api("GET", `/v1/topics/${topic}`);
    expect(described.body.queueStats[0]).toMatchObject({ sent: 2, delivered: 1 });
  });
});
