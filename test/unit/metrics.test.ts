import { describe, expect, it } from "vitest";
import {
  escapeLabelValue,
  formatMetrics,
  type MetricsSnapshot,
} from "../../src/gateway/metrics.ts";
import type { GroupQueueStats, QueueStats } from "../../src/protocol/types.ts";

const queue = (queue: number, over: Partial<QueueStats> = {}): QueueStats => ({
  queue,
  minOffset: 0,
  maxOffset: 0,
  messages: 0,
  bytes: 0,
  scheduled: 0,
  dropped: 0,
  expired: 0,
  sent: 0,
  delivered: 0,
  parked: 0,
  ...over,
});

const lag = (queue: number, over: Partial<GroupQueueStats> = {}): GroupQueueStats => ({
  queue,
  offset: 0,
  maxOffset: 0,
  lag: 0,
  inflight: 0,
  retrying: 0,
  dlq: 0,
  ...over,
});

const empty: MetricsSnapshot = { topics: [], groups: [], errors: 0 };

describe("formatMetrics", () => {
  it("declares every family with HELP and TYPE even when nothing exists yet", () => {
    const text = formatMetrics(empty);
    expect(text).toContain("# TYPE edgemq_messages_sent_total counter\n");
    expect(text).toContain("# TYPE edgemq_messages_delivered_total counter\n");
    expect(text).toContain("# TYPE edgemq_backlog_messages gauge\n");
    expect(text).toContain("# TYPE edgemq_group_lag gauge\n");
    expect(text).toContain("# HELP edgemq_messages_dropped_total ");
    expect(text).toContain("edgemq_scrape_errors 0\n");
    expect(text.endsWith("\n")).toBe(true);
  });

  it("writes one sample per queue with topic and queue labels", () => {
    const text = formatMetrics({
      ...empty,
      topics: [
        {
          topic: "orders",
          queues: [
            queue(0, { sent: 7, delivered: 5, messages: 3, bytes: 120, maxOffset: 7 }),
            queue(1, { dropped: 2 }),
          ],
        },
      ],
    });
    expect(text).toContain('edgemq_messages_sent_total{topic="orders",queue="0"} 7\n');
    expect(text).toContain('edgemq_messages_delivered_total{topic="orders",queue="0"} 5\n');
    expect(text).toContain('edgemq_backlog_messages{topic="orders",queue="0"} 3\n');
    expect(text).toContain('edgemq_backlog_bytes{topic="orders",queue="0"} 120\n');
    expect(text).toContain('edgemq_queue_max_offset{topic="orders",queue="0"} 7\n');
    expect(text).toContain('edgemq_messages_dropped_total{topic="orders",queue="1"} 2\n');
    expect(text).toContain('edgemq_topic_queues{topic="orders"} 2\n');
  });

  it("writes group lag, in-flight, retry and DLQ numbers per group, topic and queue", () => {
    const text = formatMetrics({
      ...empty,
      groups: [
        {
          group: "billing",
          members: 2,
          topics: { orders: [lag(0, { lag: 4, inflight: 1, retrying: 2, dlq: 3, offset: 6 })] },
        },
      ],
    });
    expect(text).toContain('edgemq_group_lag{group="billing",topic="orders",queue="0"} 4\n');
    expect(text).toContain('edgemq_group_offset{group="billing",topic="orders",queue="0"} 6\n');
    expect(text).toContain(
      'edgemq_group_inflight_messages{group="billing",topic="orders",queue="0"} 1\n',
    );
    expect(text).toContain(
      'edgemq_group_retry_messages{group="billing",topic="orders",queue="0"} 2\n',
    );
    expect(text).toContain(
      'edgemq_group_dlq_messages{group="billing",topic="orders",queue="0"} 3\n',
    );
    expect(text).toContain('edgemq_group_members{group="billing"} 2\n');
  });

  it("keeps each family's samples together, after its TYPE line", () => {
    const text = formatMetrics({
      ...empty,
      topics: [
        { topic: "b", queues: [queue(0)] },
        { topic: "a", queues: [queue(1), queue(0)] },
      ],
    });
    const lines = text.trimEnd().split("\n");
    const seen = new Set<string>();
    let current = "";
    for (const line of lines) {
      const type = /^# TYPE (\S+) /.exec(line);
      if (type) {
        expect(seen.has(type[1]!)).toBe(false);
        seen.add(type[1]!);
        current = type[1]!;
      } else if (!line.startsWith("#")) {
        expect(line.startsWith(current + "{") || line.startsWith(current + " ")).toBe(true);
      }
    }
  });

  it("sorts topics by name and queues by number, so equal states scrape equal", () => {
    const text = formatMetrics({
      ...empty,
      topics: [
        { topic: "b", queues: [queue(0)] },
        { topic: "a", queues: [queue(1), queue(0)] },
      ],
    });
    const sent = text.split("\n").filter((l) => l.startsWith("edgemq_messages_sent_total{"));
    expect(sent).toEqual([
      'edgemq_messages_sent_total{topic="a",queue="0"} 0',
      'edgemq_messages_sent_total{topic="a",queue="1"} 0',
      'edgemq_messages_sent_total{topic="b",queue="0"} 0',
    ]);
  });

  it("reports failed calls of the scrape", () => {
    expect(formatMetrics({ ...empty, errors: 3 })).toContain("edgemq_scrape_errors 3\n");
  });
});

describe("escapeLabelValue", () => {
  it("escapes backslash, double quote and line feed", () => {
    expect(escapeLabelValue('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd');
    expect(escapeLabelValue("plain-name_1")).toBe("plain-name_1");
  });
});

describe("formatMetrics: push subscriptions", () => {
  it("writes delivery counters per subscription and queue, and a cumulative latency histogram in seconds", () => {
    const buckets = [1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const text = formatMetrics({
      ...empty,
      push: [
        {
          name: "hook",
          topic: "orders",
          queues: [
            {
              queue: 0,
              delivered: 3,
              failed: 1,
              lastError: "HTTP 500",
              lastErrorAt: 1,
              failures: 0,
              backoffUntil: null,
              latency: { buckets, sumMs: 20_070, count: 4 },
            },
          ],
        },
      ],
    });
    const labels = 'subscription="hook",topic="orders",queue="0"';
    expect(text).toContain("# TYPE edgemq_push_delivered_total counter\n");
    expect(text).toContain(`edgemq_push_delivered_total{${labels}} 3\n`);
    expect(text).toContain(`edgemq_push_failed_total{${labels}} 1\n`);
    expect(text).toContain(`edgemq_push_consecutive_failures{${labels}} 0\n`);
    expect(text).toContain("# TYPE edgemq_push_delivery_duration_seconds histogram\n");
    expect(text).toContain(
      `edgemq_push_delivery_duration_seconds_bucket{${labels},le="0.005"} 1\n`,
    );
    expect(text).toContain(
      `edgemq_push_delivery_duration_seconds_bucket{${labels},le="0.025"} 3\n`,
    );
    expect(text).toContain(`edgemq_push_delivery_duration_seconds_bucket{${labels},le="10"} 3\n`);
    expect(text).toContain(`edgemq_push_delivery_duration_seconds_bucket{${labels},le="+Inf"} 4\n`);
    expect(text).toContain(`edgemq_push_delivery_duration_seconds_sum{${labels}} 20.07\n`);
    expect(text).toContain(`edgemq_push_delivery_duration_seconds_count{${labels}} 4\n`);
  });
});
