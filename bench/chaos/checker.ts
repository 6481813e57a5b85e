/**
 * The checks at the end of a run, in the manner of RocketMQ's OpenChaos and
 * Jepsen's queue workloads: the whole log read back by offset against what
 * was acknowledged and delivered (lost, stored twice, unexpected), order per
 * sharding key, and the guarantees the faults were set up to test.
 */
import type { ChaosClient } from "./client.ts";
import { ORDERLY, PULLERS, QUEUES, SESSION_GROUP, TOPIC } from "./config.ts";
import type { History } from "./history.ts";

/** Where each msgId sits in the log: one place, or more if it was stored twice. */
export type Log = Map<string, { queue: number; offset: number }[]>;

/** Reads every queue's log by offset from 0, checking it has neither gaps nor deletions. */
export async function readLog(client: ChaosClient, history: History): Promise<Log> {
  const where: Log = new Map();
  for (let q = 0; q < QUEUES; q++) {
    let offset = 0;
    for (let i = 0; i < 10_000; i++) {
      const b = await client.must(
        "GET",
        `/v1/topics/${TOPIC}/queues/${q}/messages?offset=${offset}&max=1000`,
      );
      if (b.minOffset !== 0)
        history.violate(`queue ${q}: minOffset ${b.minOffset} (nothing should be deleted)`);
      for (const m of b.messages as any[]) {
        if (m.offset !== offset)
          history.violate(`queue ${q}: offset ${m.offset} read where ${offset} was expected (gap)`);
        offset = m.offset + 1;
        const list = where.get(m.msgId) ?? [];
        list.push({ queue: q, offset: m.offset });
        where.set(m.msgId, list);
      }
      if (b.nextOffset >= b.maxOffset) break;
      offset = b.nextOffset;
    }
  }
  return where;
}

/**
 * What the consuming groups have left: messages not yet delivered, in flight
 * or waiting to retry, summed over the groups and queues (0 when drained);
 * null when the broker could not be asked.
 */
export async function leftToConsume(client: ChaosClient): Promise<number | null> {
  try {
    const left = (queues: any[], inflight: boolean) =>
      queues.reduce(
        (n, q) => n + q.lag + (inflight ? (q.inflight ?? 0) + (q.retrying ?? 0) : 0),
        0,
      ) as number;
    const g = await client.must("GET", `/v1/groups/${ORDERLY}`, undefined, 10_000);
    const o = await client.must(
      "GET",
      `/v1/groups/${PULLERS}/topics/${TOPIC}/offsets`,
      undefined,
      10_000,
    );
    const s = await client.must("GET", `/v1/groups/${SESSION_GROUP}`, undefined, 10_000);
    return (
      left(g.topics[TOPIC] as any[], true) +
      left(o.offsets as any[], false) +
      left((s.topics[TOPIC] ?? []) as any[], true)
    );
  } catch {
    return null;
  }
}

/**
 * Order per sharding key: sequence numbers increase along the log (in one
 * queue), and the orderly group first receives them in order and never
 * receives one again after a later one was handed out. Answers the breaks.
 */
export function checkOrder(log: Log, history: History): number {
  let bad = 0;
  const byKey = new Map<string, { seq: number; queue: number; offset: number }[]>();
  for (const [msgId, places] of log) {
    const s = history.attempted.get(msgId);
    if (s?.kind !== "keyed" || places.length !== 1) continue;
    const list = byKey.get(s.key!) ?? [];
    list.push({ seq: s.seq!, ...places[0]! });
    byKey.set(s.key!, list);
  }
  for (const [key, list] of byKey) {
    list.sort((a, b) => a.offset - b.offset);
    for (let i = 1; i < list.length; i++) {
      if (list[i]!.queue !== list[0]!.queue) {
        bad++;
        history.violate(`key ${key} stored in queues ${list[0]!.queue} and ${list[i]!.queue}`);
      }
      if (list[i]!.seq <= list[i - 1]!.seq) {
        bad++;
        history.violate(`key ${key}: seq ${list[i]!.seq} stored after seq ${list[i - 1]!.seq}`);
      }
    }
  }
  const seen = new Map<string, { maxSeq: number; firsts: Set<number> }>();
  for (const d of history.orderlyDeliveries) {
    const s = history.attempted.get(d.msgId);
    if (s?.kind !== "keyed") continue;
    const k = seen.get(s.key!) ?? { maxSeq: -1, firsts: new Set<number>() };
    if (s.seq! < k.maxSeq) {
      bad++;
      history.violate(`orderly: key ${s.key} seq ${s.seq} delivered after seq ${k.maxSeq}`);
    }
    k.maxSeq = Math.max(k.maxSeq, s.seq!);
    k.firsts.add(s.seq!);
    seen.set(s.key!, k);
  }
  return bad;
}

/** The log checked against the history. */
export interface LogFindings {
  lost: number;
  lostOrderly: number;
  lostPulled: number;
  /** Acknowledged, never handled by the session PushConsumer group. */
  lostSessions: number;
  storedTwice: number;
  unexpected: number;
}

/**
 * Lost: acknowledged but not in the log (or at another position than
 * acknowledged), or never delivered to the orderly or the pulling group.
 * Stored twice: a msgId at more than one place. Unexpected: in the log or
 * delivered, never sent.
 */
export function checkLog(log: Log, history: History): LogFindings {
  const f: LogFindings = {
    lost: 0,
    lostOrderly: 0,
    lostPulled: 0,
    lostSessions: 0,
    storedTwice: 0,
    unexpected: 0,
  };
  const deliveredOrderly = new Set(history.orderlyDeliveries.map((d) => d.msgId));
  for (const [msgId, s] of history.acked) {
    const places = log.get(msgId);
    if (!places) {
      f.lost++;
      history.violate(`lost: ${msgId} (${s.kind}) acknowledged, not in the log`);
      continue;
    }
    if (s.offset !== undefined && s.offset !== null) {
      const p = places[0]!;
      if (p.queue !== s.queue || p.offset !== s.offset) {
        history.violate(
          `${msgId} acknowledged at ${s.queue}/${s.offset}, stored at ${p.queue}/${p.offset}`,
        );
      }
    }
    if (!deliveredOrderly.has(msgId)) {
      f.lostOrderly++;
      history.violate(`lost: ${msgId} (${s.kind}) never delivered to the orderly group`);
    }
    if (!history.pulled.has(msgId)) {
      f.lostPulled++;
      history.violate(`lost: ${msgId} (${s.kind}) never read by the pulling group`);
    }
    if (!history.sessionDelivered.has(msgId)) {
      f.lostSessions++;
      history.violate(`lost: ${msgId} (${s.kind}) never handled by the session group`);
    }
  }
  for (const [msgId, places] of log) {
    if (places.length > 1) {
      f.storedTwice++;
      history.violate(
        `stored twice: ${msgId} at ${places.map((p) => `${p.queue}/${p.offset}`).join(", ")}`,
      );
    }
    if (!history.attempted.has(msgId)) {
      f.unexpected++;
      history.violate(`unexpected: ${msgId} in the log, never sent`);
    }
  }
  for (const id of new Set([...deliveredOrderly, ...history.pulled, ...history.sessionDelivered])) {
    if (!history.attempted.has(id)) {
      f.unexpected++;
      history.violate(`unexpected: ${id} read, never sent`);
    }
  }
  return f;
}

/**
 * The faults really tested something: a half transaction and a scheduled
 * message were pending across a restart, and receipts were held across a
 * fault. Answers how many of the kills' scheduled messages were delivered.
 */
export function checkFaultCoverage(history: History, kills: number): number {
  const deliveredOrderly = new Set(history.orderlyDeliveries.map((d) => d.msgId));
  if (kills > 0 && history.halvesAcrossRestart === 0)
    history.violate("no half transaction was open across a restart");
  if (kills > 0 && history.scheduledAtKill.length === 0)
    history.violate("no scheduled message was pending across a restart");
  if (history.held.reduce((a, h) => a + h.msgIds.size, 0) === 0)
    history.violate("no receipt was held across a fault");
  return history.scheduledAtKill.filter((id) => deliveredOrderly.has(id)).length;
}
