/**
 * Orderly groups: invariant 3. Within a queue, messages with the same
 * sharding key reach an orderly group in offset order, one at a time: a later
 * message waits while an earlier one is in flight or waiting to retry.
 */
import { describe, expect, it } from "vitest";
import { api, createTopic, unique } from "./helpers.ts";
import {
  ack,
  deadLetters,
  drain,
  lapse,
  makeDue,
  nack,
  receipts,
  receive,
  send,
  sleep,
} from "./consume-helpers.ts";

async function orderlyGroup(extra: Record<string, unknown> = {}): Promise<string> {
  const group = unique("og");
  const r = await api("PUT", `/v1/groups/${group}`, { orderly: true, ...extra });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return group;
}

const keyed = (key: string, body: string) => ({ body, shardingKey: key });
const bodies = (ms: any[]) => ms.map((m) => m.body);

describe("orderly groups", () => {
  it("hands out one message per sharding key at a time, the earliest first", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = await orderlyGroup();
    await send(topic, [
      keyed("A", "a1"),
      keyed("A", "a2"),
      keyed("B", "b1"),
      keyed("A", "a3"),
      keyed("B", "b2"),
    ]);
    const first = await receive(group, topic);
    expect(bodies(first)).toEqual(["a1", "b1"]);
    expect(await receive(group, topic)).toEqual([]);
    await ack(group, topic, [first[0].receipt]);
    expect(bodies(await receive(group, topic))).toEqual(["a2"]);
    await ack(group, topic, [first[1].receipt]);
    expect(bodies(await receive(group, topic))).toEqual(["b2"]);
  });

  it("does not block other keys or messages without a key", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = await orderlyGroup();
    await send(topic, [keyed("A", "a1"), keyed("A", "a2"), "free1", keyed("C", "c1"), "free2"]);
    expect(bodies(await receive(group, topic))).toEqual(["a1", "free1", "c1", "free2"]);
  });

  it("holds a key back while its earlier message waits to retry, and retries it first", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = await orderlyGroup();
    await send(topic, [keyed("K", "k1"), keyed("K", "k2"), keyed("L", "l1")]);
    const [k1, l1] = await receive(group, topic);
    expect([k1.body, l1.body]).toEqual(["k1", "l1"]);
    await nack(group, topic, [k1.receipt], 60_000);
    await ack(group, topic, [l1.receipt]);
    expect(await receive(group, topic)).toEqual([]);
    await makeDue(topic, 0, group);
    const [again] = await receive(group, topic);
    expect(again).toMatchObject({ body: "k1", reconsumeTimes: 1 });
    expect(await receive(group, topic)).toEqual([]);
    await ack(group, topic, [again.receipt]);
    expect(bodies(await receive(group, topic))).toEqual(["k2"]);
  });

  it("keeps order when the earlier message's receipt lapses", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = await orderlyGroup();
    await send(topic, [keyed("K", "k1"), keyed("K", "k2")]);
    expect(bodies(await receive(group, topic))).toEqual(["k1"]);
    await lapse(topic, 0, group);
    const got = await receive(group, topic);
    expect(got.map((m) => [m.body, m.reconsumeTimes])).toEqual([["k1", 1]]);
  });

  it("delivers every key's messages in offset order under random nacks", async () => {
    const topic = await createTopic({ queues: 2 });
    const group = await orderlyGroup({ retryDelaysMs: [0] });
    const keys = ["k0", "k1", "k2", "k3", "k4"];
    const sent: { body: string; shardingKey: string }[] = [];
    for (let i = 0; i < 8; i++) for (const k of keys) sent.push(keyed(k, `${k}-${i}`));
    await send(topic, sent);
    const acked = new Map<string, string[]>(keys.map((k) => [k, []]));
    let seed = 7;
    const coin = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) & 1) === 1;
    for (let round = 0; round < 200 && [...acked.values()].flat().length < sent.length; round++) {
      const got = await receive(group, topic, { max: 10 });
      // One at a time per key.
      const perKey = got.map((m) => m.shardingKey);
      expect(new Set(perKey).size).toBe(perKey.length);
      const toAck: any[] = [];
      const toNack: any[] = [];
      for (const m of got) (coin() ? toNack : toAck).push(m);
      if (toNack.length) await nack(group, topic, receipts(toNack));
      if (toAck.length) await ack(group, topic, receipts(toAck));
      for (const m of toAck) acked.get(m.shardingKey)!.push(m.body);
    }
    for (const k of keys) {
      expect(acked.get(k)).toEqual(Array.from({ length: 8 }, (_, i) => `${k}-${i}`));
    }
  });

  it("moves on to the key's next message once the earlier one is dead-lettered", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = await orderlyGroup({ maxReconsumeTimes: 1 });
    await send(topic, [keyed("K", "k1"), keyed("K", "k2")]);
    const [a] = await receive(group, topic);
    await nack(group, topic, [a.receipt], 0);
    const [b] = await receive(group, topic);
    expect(b).toMatchObject({ body: "k1", reconsumeTimes: 1 });
    await nack(group, topic, [b.receipt], 0);
    expect(bodies(await deadLetters(group))).toEqual(["k1"]);
    expect(bodies(await receive(group, topic))).toEqual(["k2"]);
  });

  it("never hands out again a message dead-lettered while an earlier key was blocked", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = await orderlyGroup({ maxReconsumeTimes: 0 });
    await send(topic, [keyed("K", "k1"), keyed("K", "k2"), keyed("L", "l1")]);
    const [k1, l1] = await receive(group, topic);
    expect([k1.body, l1.body]).toEqual(["k1", "l1"]);
    await nack(group, topic, [l1.receipt]);
    await ack(group, topic, [k1.receipt]);
    const rest = await drain(group, topic);
    expect(bodies(rest)).toEqual(["k2"]);
    expect(bodies(await deadLetters(group))).toEqual(["l1"]);
    // Resent, it comes back once, and once acked stays gone.
    await api("POST", `/v1/groups/${group}/dlq/resend`, {});
    const resent = await drain(group, topic);
    expect(resent.map((m) => [m.body, m.reconsumeTimes])).toEqual([["l1", 0]]);
    await ack(group, topic, receipts([...rest, ...resent]));
    expect(await drain(group, topic)).toEqual([]);
    expect(await deadLetters(group)).toEqual([]);
  });

  it("never hands out again a message acked while an earlier key was blocked", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = await orderlyGroup();
    await send(topic, [keyed("K", "k1"), keyed("K", "k2"), keyed("L", "l1"), keyed("L", "l2")]);
    const [k1, l1] = await receive(group, topic);
    await ack(group, topic, [l1.receipt]);
    const [l2] = await receive(group, topic);
    expect(l2.body).toBe("l2");
    await ack(group, topic, [l2.receipt, k1.receipt]);
    const rest = await drain(group, topic);
    expect(bodies(rest)).toEqual(["k2"]);
    await ack(group, topic, receipts(rest));
    expect(await drain(group, topic)).toEqual([]);
  });

  it("keeps handing out the rest without duplicates when a group stops being orderly", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = await orderlyGroup();
    await send(topic, [keyed("K", "k1"), keyed("K", "k2"), keyed("L", "l1"), keyed("M", "m1")]);
    const first = await receive(group, topic, { max: 2 });
    expect(bodies(first)).toEqual(["k1", "l1"]);
    const r = await api("PUT", `/v1/groups/${group}`, { orderly: false });
    expect(r.status).toBe(200);
    const rest = await drain(group, topic);
    expect(bodies(rest)).toEqual(["k2", "m1"]);
    await ack(group, topic, receipts([...first, ...rest]));
    expect(await drain(group, topic)).toEqual([]);
  });

  it("keeps order within each queue of a multi-queue topic", async () => {
    const topic = await createTopic({ queues: 4 });
    const group = await orderlyGroup();
    const sent: { body: string; shardingKey: string }[] = [];
    for (let i = 0; i < 5; i++)
      for (let k = 0; k < 6; k++) sent.push(keyed(`user-${k}`, `${k}:${i}`));
    await send(topic, sent);
    const seen = new Map<string, number[]>();
    for (let round = 0; round < 20; round++) {
      const got = await receive(group, topic, { max: 32 });
      if (got.length === 0) break;
      for (const m of got) {
        const [k, i] = m.body.split(":");
        seen.set(k, [...(seen.get(k) ?? []), Number(i)]);
      }
      await ack(group, topic, receipts(got));
    }
    expect(seen.size).toBe(6);
    for (const order of seen.values()) expect(order).toEqual([0, 1, 2, 3, 4]);
  });

  it("wakes a waiting receive when an ack unblocks the key", async () => {
    const topic = await createTopic({ queues: 2 });
    const group = await orderlyGroup();
    await send(topic, [keyed("K", "k1"), keyed("K", "k2")]);
    const [k1] = await receive(group, topic);
    const waiting = receive(group, topic, { waitMs: 5000 });
    await sleep(100);
    await ack(group, topic, [k1.receipt]);
    expect(bodies(await waiting)).toEqual(["k2"]);
  });

  it("keeps waiting while only blocked keys arrive, and wakes for a free one", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = await orderlyGroup();
    await send(topic, [keyed("K", "k1"), keyed("K", "k2")]);
    await receive(group, topic);
    const waiting = receive(group, topic, { waitMs: 5000 });
    await sleep(100);
    await send(topic, [keyed("K", "k3")]);
    await sleep(100);
    await send(topic, [keyed("L", "l1"), keyed("L", "l2")]);
    expect(bodies(await waiting)).toEqual(["l1"]);
  });

  it("times out with nothing while every key is blocked", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = await orderlyGroup();
    await send(topic, [keyed("K", "k1"), keyed("K", "k2")]);
    const [k1] = await receive(group, topic);
    expect(await receive(group, topic, { waitMs: 300 })).toEqual([]);
    await ack(group, topic, [k1.receipt]);
    expect(bodies(await receive(group, topic))).toEqual(["k2"]);
  });

  it("lets a non-orderly group of the same topic take every message at once", async () => {
    const topic = await createTopic({ queues: 1 });
    await orderlyGroup();
    await send(topic, [keyed("K", "k1"), keyed("K", "k2")]);
    expect(bodies(await drain(unique("g"), topic))).toEqual(["k1", "k2"]);
  });

  it("reaches another key behind a long run of one blocked key", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = await orderlyGroup();
    // More blocked messages than one scan batch (BATCH.scan = 2000) before the free key.
    const run = Array.from({ length: 2100 }, (_, i) => keyed("hot", `h${i}`));
    for (let i = 0; i < run.length; i += 700) await send(topic, run.slice(i, i + 700));
    await send(topic, [keyed("cold", "c0")]);
    const first = await receive(group, topic);
    expect(bodies(first)).toEqual(["h0", "c0"]);
    await ack(group, topic, receipts(first));
    expect(bodies(await receive(group, topic))).toEqual(["h1"]);
  });
});
