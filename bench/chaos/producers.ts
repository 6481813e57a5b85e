/**
 * The producing side of the workload: keyed producers (per-key sequence
 * numbers, some batches of 3, some scheduled messages), each retrying an
 * unknown send with the SAME msgIds until acknowledged; and a transaction
 * worker that prepares half messages and commits them 1.5 s later.
 */
import { PRODUCER_GROUP, KEYS_PER_PRODUCER, TOPIC, sleep } from "./config.ts";
import type { ChaosRun } from "./context.ts";
import type { Half, SendAnswer, Sent } from "./history.ts";

/** Sends `messages` until acknowledged (same msgIds every time), or until `deadline`. */
export async function sendUntilAcked(
  run: ChaosRun,
  messages: Record<string, unknown>[],
  deadline: number,
): Promise<SendAnswer[] | null> {
  const { client, history } = run;
  let tries = 0;
  while (Date.now() < deadline) {
    history.stats.sendRequests++;
    if (tries++ > 0) history.stats.retriedSends++;
    try {
      const r = await client.call("POST", `/v1/topics/${TOPIC}/messages`, { messages });
      if (r.status === 200) {
        history.sendSucceeded();
        return r.body.results as SendAnswer[];
      }
      if (r.status < 500) {
        history.violate(`send answered ${r.status}: ${JSON.stringify(r.body).slice(0, 200)}`);
        return null;
      }
      history.sendFailed();
    } catch {
      history.sendFailed();
    }
    await sleep(run.rand.between(50, 200));
  }
  return null;
}

/** Producer `p`: its own sharding keys, sequence numbers per key, until producing stops. */
export async function producer(run: ChaosRun, p: number): Promise<void> {
  const { history, rand } = run;
  const keys = Array.from({ length: KEYS_PER_PRODUCER }, (_, i) => `p${p}k${i}`);
  const seq = new Map(keys.map((k) => [k, 0]));
  let n = 0;
  while (run.running.producing) {
    const r = rand.work();
    const deadline = Date.now() + 90_000;
    if (r < 0.05) {
      // Scheduled, without a key (it joins the log when due, out of key order).
      const m: Sent = { msgId: `p${p}-${n++}`, kind: "scheduled" };
      history.attempted.set(m.msgId, m);
      const results = await sendUntilAcked(
        run,
        [{ body: "scheduled", msgId: m.msgId, delayMs: rand.between(500, 4000) }],
        deadline,
      );
      if (results) history.recordAck(m, results[0]!);
      continue;
    }
    const key = keys[Math.floor(rand.work() * keys.length)]!;
    const count = r < 0.15 ? 3 : 1; // some batches: all or nothing
    const batch: Sent[] = [];
    for (let i = 0; i < count; i++) {
      const s = seq.get(key)! + i;
      batch.push({ msgId: `p${p}-${n++}`, kind: "keyed", key, seq: s });
    }
    for (const m of batch) history.attempted.set(m.msgId, m);
    const results = await sendUntilAcked(
      run,
      batch.map((m) => ({
        body: JSON.stringify({ key, seq: m.seq }),
        msgId: m.msgId,
        shardingKey: key,
      })),
      deadline,
    );
    if (!results) return; // gave up at the end: this key sends nothing more
    batch.forEach((m, i) => history.recordAck(m, results[i]!));
    seq.set(key, seq.get(key)! + count);
    await sleep(rand.between(0, 15));
  }
}

/** Prepares one half message, retried through faults until `deadline`. */
export async function prepareHalf(run: ChaosRun, deadline: number): Promise<Half | null> {
  const { client, history } = run;
  const msgId = `tx-${history.txCount++}`;
  history.attempted.set(msgId, { msgId, kind: "tx" });
  while (Date.now() < deadline) {
    try {
      const r = await client.call("POST", `/v1/topics/${TOPIC}/transactions`, {
        message: { body: "tx", msgId },
        producerGroup: PRODUCER_GROUP,
      });
      if (r.status === 200) {
        history.stats.txPrepared++;
        return { txId: r.body.txId, msgId, preparedInRun: history.run };
      }
      if (r.status < 500) {
        history.violate(`prepare answered ${r.status}: ${JSON.stringify(r.body).slice(0, 200)}`);
        return null;
      }
    } catch {
      // retried below
    }
    await sleep(run.rand.between(50, 200));
  }
  return null;
}

/** Commits a half message, retried through faults until `deadline`; then it counts as acknowledged. */
export async function commitHalf(run: ChaosRun, h: Half, deadline: number): Promise<void> {
  const { client, history } = run;
  while (Date.now() < deadline) {
    try {
      const r = await client.call(
        "POST",
        `/v1/transactions/${encodeURIComponent(h.txId)}/commit`,
        {},
      );
      if (r.status === 200 && r.body.status === "committed") {
        history.stats.txCommitted++;
        if (history.run > h.preparedInRun) history.halvesAcrossRestart++;
        history.acked.set(h.msgId, { msgId: h.msgId, kind: "tx" });
        return;
      }
      if (r.status < 500) {
        history.violate(
          `commit of ${h.msgId} answered ${r.status}: ${JSON.stringify(r.body).slice(0, 200)}`,
        );
        return;
      }
    } catch {
      // retried below
    }
    await sleep(run.rand.between(50, 200));
  }
}

/** Keeps up to 3 half messages open, committing each 1.5 s after it was prepared. */
export async function transactor(run: ChaosRun): Promise<void> {
  const open: { half: Half; at: number }[] = [];
  while (run.running.producing) {
    if (open.length < 3) {
      const h = await prepareHalf(run, Date.now() + 60_000);
      if (h) open.push({ half: h, at: Date.now() });
    } else if (Date.now() - open[0]!.at > 1500) {
      await commitHalf(run, open.shift()!.half, Date.now() + 60_000);
    } else await sleep(100);
  }
  for (const o of open) await commitHalf(run, o.half, Date.now() + 60_000);
}
