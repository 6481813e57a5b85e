/**
 * The consuming side of the workload: an orderly receive+ack group (which
 * now and then does not ack, on purpose), a pull+commit group, and a third
 * group that holds receipts across each fault and checks they come back.
 */
import type { Answer } from "./client.ts";
import {
  HOLDERS,
  INVISIBLE_MS,
  ORDERLY,
  PULLERS,
  QUEUES,
  REQUEST_TIMEOUT_MS,
  TOPIC,
  sleep,
} from "./config.ts";
import type { ChaosRun } from "./context.ts";
import type { Held } from "./history.ts";

/** Receives for the orderly group and acks, but for one message in 50, until consuming stops. */
export async function orderlyConsumer(run: ChaosRun): Promise<void> {
  const { client, history, rand } = run;
  const { stats } = history;
  while (run.running.consuming) {
    let r: Answer;
    try {
      r = await client.call(
        "POST",
        `/v1/groups/${ORDERLY}/topics/${TOPIC}/receive`,
        { max: 16, invisibleMs: INVISIBLE_MS, waitMs: 1000 },
        1000 + REQUEST_TIMEOUT_MS,
      );
    } catch {
      await sleep(100);
      continue;
    }
    if (r.status !== 200) {
      if (r.status < 500)
        history.violate(`receive answered ${r.status}: ${JSON.stringify(r.body).slice(0, 200)}`);
      await sleep(100);
      continue;
    }
    const receipts: string[] = [];
    for (const m of r.body.messages as any[]) {
      history.orderlyDeliveries.push({
        msgId: m.msgId,
        queue: m.queue,
        offset: m.offset,
        reconsumeTimes: m.reconsumeTimes,
        at: Date.now(),
      });
      stats.orderlyDelivered++;
      if (m.reconsumeTimes > 0) stats.orderlyRedelivered++;
      // A consumer that fails now and then: the message must come back.
      if (run.running.consuming && rand.work() < 0.02) stats.notAckedOnPurpose++;
      else receipts.push(m.receipt);
    }
    if (receipts.length === 0) continue;
    try {
      const a = await client.call("POST", `/v1/groups/${ORDERLY}/topics/${TOPIC}/ack`, {
        receipts,
      });
      if (a.status === 200) {
        for (const res of a.body.results as any[]) if (!res.ok) stats.ackExpired++;
      } else stats.ackFailed += receipts.length;
    } catch {
      stats.ackFailed += receipts.length;
    }
  }
}

/** Pulls every queue for the pull group and commits what it read, until consuming stops. */
export async function puller(run: ChaosRun): Promise<void> {
  const { client, history } = run;
  while (run.running.consuming) {
    let got = 0;
    for (let q = 0; q < QUEUES; q++) {
      let r: Answer;
      try {
        r = await client.call(
          "GET",
          `/v1/topics/${TOPIC}/queues/${q}/messages?group=${PULLERS}&max=64`,
        );
      } catch {
        await sleep(100);
        continue;
      }
      if (r.status !== 200) {
        // The group does not exist until its first commit: pull from 0 then.
        if (r.status === 404 || r.status === 400) {
          try {
            r = await client.call(
              "GET",
              `/v1/topics/${TOPIC}/queues/${q}/messages?offset=0&max=64`,
            );
          } catch {
            continue;
          }
        }
        if (r.status !== 200) continue;
      }
      const b = r.body;
      if (b.skipped > 0) history.violate(`pull of queue ${q} skipped ${b.skipped}`);
      for (const m of b.messages as any[]) {
        history.pulled.add(m.msgId);
        history.stats.pulledMessages++;
        got++;
      }
      if (b.messages.length === 0) continue;
      try {
        const c = await client.call(
          "PUT",
          `/v1/groups/${PULLERS}/topics/${TOPIC}/queues/${q}/offset`,
          { offset: b.nextOffset },
        );
        if (c.status === 200) {
          history.stats.commits++;
          history.ackedCommit[q] = Math.max(history.ackedCommit[q]!, b.nextOffset);
        }
      } catch {
        // unknown: the next pull starts from whatever is committed
      }
    }
    if (got === 0) await sleep(200);
  }
}

/** Pops a few messages for the holders group and keeps their receipts (never acks them). */
export async function hold(
  run: ChaosRun,
  invisibleMs: number,
): Promise<{ msgIds: Set<string>; receipts: string[] }> {
  const { client, history } = run;
  try {
    const r = await client.call("POST", `/v1/groups/${HOLDERS}/topics/${TOPIC}/receive`, {
      max: 4,
      invisibleMs,
    });
    if (r.status === 200) {
      const msgs = r.body.messages as any[];
      for (const m of msgs) if (m.reconsumeTimes >= 1) history.holderRedelivered.add(m.msgId);
      return { msgIds: new Set(msgs.map((m) => m.msgId)), receipts: msgs.map((m) => m.receipt) };
    }
  } catch {
    // nothing held this time
  }
  return { msgIds: new Set(), receipts: [] };
}

/**
 * Receives the holders group until every held message came back (bounded),
 * acking as it goes; answers how many did.
 */
export async function verifyHeld(run: ChaosRun, h: Held, ms: number): Promise<number> {
  const { client, history } = run;
  const missing = () => [...h.msgIds].filter((id) => !history.holderRedelivered.has(id));
  const deadline = Date.now() + ms;
  while (missing().length > 0 && Date.now() < deadline) {
    try {
      const r = await client.call(
        "POST",
        `/v1/groups/${HOLDERS}/topics/${TOPIC}/receive`,
        { max: 32, invisibleMs: 60_000, waitMs: 2000 },
        2000 + REQUEST_TIMEOUT_MS,
      );
      if (r.status !== 200) continue;
      const receipts: string[] = [];
      for (const m of r.body.messages as any[]) {
        if (m.reconsumeTimes >= 1) history.holderRedelivered.add(m.msgId);
        receipts.push(m.receipt);
      }
      if (receipts.length)
        await client.call("POST", `/v1/groups/${HOLDERS}/topics/${TOPIC}/ack`, { receipts });
    } catch {
      await sleep(200);
    }
  }
  const never = missing();
  for (const id of never)
    history.violate(`${id}: held (popped, not acked) at a ${h.fault.kind}, never delivered again`);
  return h.msgIds.size - never.length;
}
