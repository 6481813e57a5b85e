/**
 * The workload over streaming sessions (docs/protocol.md), through the SDK
 * with its defaults: keyed producers sending with `Producer.send` (the SDK
 * resends unanswered frames with the same msgIds after a lost session), and
 * a PushConsumer group that must receive every acknowledged message at least
 * once, whatever the faults. What they send is in the same history as the
 * HTTP producers' messages, so the log checks (lost, stored twice, order per
 * key) cover them too.
 */
import { Producer, PushConsumer } from "../../client/index.ts";
import { INVISIBLE_MS, KEYS_PER_PRODUCER, SESSION_GROUP, TOPIC, sleep } from "./config.ts";
import type { ChaosRun } from "./context.ts";
import type { Sent } from "./history.ts";

/** Session producer `p`: its own keys (`s<p>k<i>`), one send at a time, until producing stops. */
export async function sessionProducer(run: ChaosRun, p: number, endpoint: string): Promise<void> {
  const { history, rand } = run;
  // Patient: a send outlives a restart (the SDK reconnects and resends).
  const producer = new Producer({ endpoint, retry: { maxAttempts: 30, timeoutMs: 5000 } });
  const keys = Array.from({ length: KEYS_PER_PRODUCER }, (_, i) => `s${p}k${i}`);
  const seq = new Map(keys.map((k) => [k, 0]));
  let n = 0;
  try {
    while (run.running.producing) {
      const key = keys[Math.floor(rand.work() * keys.length)]!;
      const m: Sent = { msgId: `s${p}-${n++}`, kind: "keyed", key, seq: seq.get(key)! };
      history.attempted.set(m.msgId, m);
      const deadline = Date.now() + 90_000;
      let acked = false;
      while (!acked && Date.now() < deadline) {
        history.stats.sessionSends++;
        try {
          const r = await producer.send({
            topic: TOPIC,
            body: JSON.stringify({ key, seq: m.seq }),
            msgId: m.msgId,
            shardingKey: key,
          });
          if (r.status === "queued") throw new Error("no outbox here");
          history.recordAck(
            m,
            r as { msgId: string; status: string; queue: number; offset: number | null },
          );
          acked = true;
        } catch (e) {
          const code = (e as { code?: string }).code;
          if (code !== undefined && code !== "UNAVAILABLE" && code !== "INTERNAL") {
            history.violate(`session send of ${m.msgId} refused: ${String(e).slice(0, 200)}`);
            return;
          }
          history.stats.sessionSendRetries++;
          await sleep(rand.between(50, 200));
        }
      }
      if (!acked) return; // gave up at the end: this producer sends nothing more
      seq.set(key, seq.get(key)! + 1);
      await sleep(rand.between(0, 15));
    }
  } finally {
    await producer.close().catch(() => {});
  }
}

/** A PushConsumer over sessions for SESSION_GROUP, recording what it handles, until consuming stops. */
export async function sessionConsumer(run: ChaosRun, endpoint: string): Promise<void> {
  const { history } = run;
  // Messages claimed ahead for a session lost in a kill come back after INVISIBLE_MS.
  const consumer = new PushConsumer({
    endpoint,
    group: SESSION_GROUP,
    concurrency: 16,
    invisibleMs: INVISIBLE_MS,
  });
  consumer.subscribe(TOPIC, (m) => {
    history.sessionDelivered.add(m.msgId);
    history.stats.sessionDelivered++;
    if (m.reconsumeTimes > 0) history.stats.sessionRedelivered++;
  });
  while (run.running.consuming) await sleep(100);
  await consumer.shutdown();
}
