/**
 * `GET /metrics` formatting: a snapshot of topic, queue and group numbers in
 * the Prometheus text exposition format 0.0.4. Pure: the route collects the
 * snapshot from the shards and this turns it into text.
 */
import { PUSH_LATENCY_BUCKETS_MS, type PushShardStats } from "../protocol/push.ts";
import type { GroupQueueStats, QueueStats } from "../protocol/types.ts";

/** The content type Prometheus expects for format 0.0.4. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** What one scrape saw. */
export interface MetricsSnapshot {
  topics: { topic: string; queues: QueueStats[] }[];
  groups: { group: string; members: number; topics: Record<string, GroupQueueStats[]> }[];
  /** Push subscriptions and their counters on each queue of their topic. */
  push?: { name: string; topic: string; queues: PushShardStats[] }[];
  /** Shard or registry calls that failed during the scrape (their series are missing). */
  errors: number;
}

type Labels = Record<string, string | number>;
type Kind = "counter" | "gauge" | "histogram";

interface Family {
  name: string;
  help: string;
  kind: Kind;
  /** `suffix` names a histogram's `_bucket`, `_sum` and `_count` series. */
  samples: { labels: Labels; value: number; suffix?: string }[];
}

/** Escapes a label value: backslash, double quote and line feed, as the format requires. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** Escapes HELP text: backslash and line feed. */
function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

function formatLabels(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabelValue(String(v))}"`);
  return parts.length ? `{${parts.join(",")}}` : "";
}

function render(families: Family[]): string {
  const lines: string[] = [];
  for (const f of families) {
    lines.push(`# HELP ${f.name} ${escapeHelp(f.help)}`);
    lines.push(`# TYPE ${f.name} ${f.kind}`);
    for (const s of f.samples)
      lines.push(`${f.name}${s.suffix ?? ""}${formatLabels(s.labels)} ${formatValue(s.value)}`);
  }
  return lines.join("\n") + "\n";
}

const byName =
  <T>(key: (x: T) => string) =>
  (a: T, b: T) =>
    key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0;

/**
 * Formats a snapshot. Queue series carry `topic` and `queue` labels (sum by
 * topic for per-topic numbers); group series carry `group`, `topic` and
 * `queue`. Output is sorted, so two scrapes of the same state are equal.
 */
export function formatMetrics(snapshot: MetricsSnapshot): string {
  const family = (name: string, kind: Kind, help: string): Family => ({
    name,
    kind,
    help,
    samples: [],
  });
  const topics = [...snapshot.topics].sort(byName((t) => t.topic));
  const groups = [...snapshot.groups].sort(byName((g) => g.group));

  const perQueue: [Family, (q: QueueStats) => number][] = [
    [
      family(
        "edgemq_messages_sent_total",
        "counter",
        "Messages written to the queue's log (sends, due scheduled messages, committed transactions).",
      ),
      (q) => q.sent,
    ],
    [
      family(
        "edgemq_messages_delivered_total",
        "counter",
        "Messages handed out by pull and receive, redeliveries included.",
      ),
      (q) => q.delivered,
    ],
    [
      family("edgemq_backlog_messages", "gauge", "Messages stored in the queue."),
      (q) => q.messages,
    ],
    [
      family("edgemq_backlog_bytes", "gauge", "Bytes of messages stored in the queue."),
      (q) => q.bytes,
    ],
    [
      family("edgemq_queue_min_offset", "gauge", "First offset still stored in the queue."),
      (q) => q.minOffset,
    ],
    [
      family("edgemq_queue_max_offset", "gauge", "Next offset to be written in the queue."),
      (q) => q.maxOffset,
    ],
    [
      family("edgemq_scheduled_messages", "gauge", "Delayed or scheduled messages not yet due."),
      (q) => q.scheduled,
    ],
    [
      family(
        "edgemq_messages_dropped_total",
        "counter",
        "Messages discarded by the topic's overflow policy.",
      ),
      (q) => q.dropped,
    ],
    [
      family(
        "edgemq_messages_expired_total",
        "counter",
        "Messages that passed their expireAt before delivery.",
      ),
      (q) => q.expired,
    ],
  ];
  const queuesPerTopic = family("edgemq_topic_queues", "gauge", "Queues of the topic.");
  for (const t of topics) {
    queuesPerTopic.samples.push({ labels: { topic: t.topic }, value: t.queues.length });
    const queues = [...t.queues].sort((a, b) => a.queue - b.queue);
    for (const q of queues) {
      for (const [f, pick] of perQueue)
        f.samples.push({ labels: { topic: t.topic, queue: q.queue }, value: pick(q) });
    }
  }

  const perGroupQueue: [Family, (s: GroupQueueStats) => number][] = [
    [
      family(
        "edgemq_group_lag",
        "gauge",
        "Messages the group has not consumed yet (maxOffset - offset).",
      ),
      (s) => s.lag,
    ],
    [
      family("edgemq_group_offset", "gauge", "The group's consume position in the queue."),
      (s) => s.offset,
    ],
    [
      family(
        "edgemq_group_inflight_messages",
        "gauge",
        "Messages received by the group and not yet acked.",
      ),
      (s) => s.inflight,
    ],
    [
      family(
        "edgemq_group_retry_messages",
        "gauge",
        "Messages waiting to be redelivered to the group (nacked or lapsed).",
      ),
      (s) => s.retrying,
    ],
    [
      family("edgemq_group_dlq_messages", "gauge", "Messages in the group's dead-letter queue."),
      (s) => s.dlq,
    ],
  ];
  const members = family(
    "edgemq_group_members",
    "gauge",
    "Live members of the group (heartbeat within 30 s).",
  );
  for (const g of groups) {
    members.samples.push({ labels: { group: g.group }, value: g.members });
    for (const topic of Object.keys(g.topics).sort()) {
      const stats = [...(g.topics[topic] ?? [])].sort((a, b) => a.queue - b.queue);
      for (const s of stats) {
        for (const [f, pick] of perGroupQueue) {
          f.samples.push({ labels: { group: g.group, topic, queue: s.queue }, value: pick(s) });
        }
      }
    }
  }

  const pushFamilies = pushMetrics(snapshot.push ?? [], family);

  const errors = family(
    "edgemq_scrape_errors",
    "gauge",
    "Shard or registry calls that failed during this scrape; their series are missing.",
  );
  errors.samples.push({ labels: {}, value: snapshot.errors });

  return render([
    queuesPerTopic,
    ...perQueue.map(([f]) => f),
    members,
    ...perGroupQueue.map(([f]) => f),
    ...pushFamilies,
    errors,
  ]);
}

/**
 * Push delivery series, per subscription and queue: deliveries acked and
 * failed, the endpoint's consecutive failures now, and the delivery latency
 * (from the fetch's start to its answer, failures and timeouts included) as
 * a histogram in seconds.
 */
function pushMetrics(
  subs: NonNullable<MetricsSnapshot["push"]>,
  family: (name: string, kind: Kind, help: string) => Family,
): Family[] {
  const delivered = family(
    "edgemq_push_delivered_total",
    "counter",
    "Push deliveries the endpoint answered with a 2xx (acked).",
  );
  const failed = family(
    "edgemq_push_failed_total",
    "counter",
    "Push deliveries that failed (not 2xx, no answer within timeoutMs, network error); each is retried or dead-lettered.",
  );
  const failing = family(
    "edgemq_push_consecutive_failures",
    "gauge",
    "Failures in a row of the subscription's endpoint from this queue (0 once a delivery succeeds); while above 0 it backs off.",
  );
  const latency = family(
    "edgemq_push_delivery_duration_seconds",
    "histogram",
    "Time from the start of a push delivery to its answer or failure.",
  );
  const sorted = [...subs].sort(byName((p) => p.name));
  for (const p of sorted) {
    for (const q of [...p.queues].sort((a, b) => a.queue - b.queue)) {
      const labels = { subscription: p.name, topic: p.topic, queue: q.queue };
      delivered.samples.push({ labels, value: q.delivered });
      failed.samples.push({ labels, value: q.failed });
      failing.samples.push({ labels, value: q.failures });
      let cumulative = 0;
      PUSH_LATENCY_BUCKETS_MS.forEach((le, i) => {
        cumulative += q.latency.buckets[i] ?? 0;
        latency.samples.push({
          labels: { ...labels, le: le / 1000 },
          value: cumulative,
          suffix: "_bucket",
        });
      });
      latency.samples.push({
        labels: { ...labels, le: "+Inf" },
        value: q.latency.count,
        suffix: "_bucket",
      });
      latency.samples.push({ labels, value: q.latency.sumMs / 1000, suffix: "_sum" });
      latency.samples.push({ labels, value: q.latency.count, suffix: "_count" });
    }
  }
  return [delivered, failed, failing, latency];
}
