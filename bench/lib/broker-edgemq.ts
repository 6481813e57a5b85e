/**
 * edgemq in the side-by-side benchmark, through the public SDK classes with
 * their defaults: nothing but `{ endpoint }` is given for the connection, so
 * the SDK picks its own transport and batching (streaming sessions over the
 * global WebSocket, adaptive batching; whatever the default is, the bench
 * measures it without edits). Each destination is a topic with one queue.
 */
import { Admin, type Message, Producer, PushConsumer, SimpleConsumer } from "../../client/index.ts";
import type { Broker, ConsumeOptions, Consumer, Sender } from "./broker.ts";

const FILL_BATCH = 1000;

export function edgemqBroker(endpoint: string, pid: number): Broker {
  const admin = new Admin({ endpoint });
  let seq = 0;
  return {
    name: "edgemq",
    pid,
    async destination(label) {
      const topic = `peers-${label}-${++seq}`;
      await admin.createTopic(topic, { queues: 1 });
      return topic;
    },
    async sender(topic): Promise<Sender> {
      const producer = new Producer({ endpoint });
      return {
        async send(body) {
          const r = await producer.send({ topic, body });
          if (r.status !== "stored") throw new Error(`send answered ${r.status}`);
        },
        close: () => producer.close(),
      };
    },
    async fill(topic, n, body) {
      const producer = new Producer({ endpoint });
      let left = n;
      // Two batches in flight, as bench/consume.ts fills.
      await Promise.all(
        [0, 1].map(async () => {
          while (left > 0) {
            const k = Math.min(FILL_BATCH, left);
            left -= k;
            await producer.sendBatch(Array.from({ length: k }, () => ({ topic, body })));
          }
        }),
      );
      await producer.close();
    },
    consume(topic, opts, onMessage) {
      const group = `g-${topic}`;
      return Promise.resolve(
        opts.style === "simple"
          ? simple(endpoint, group, topic, opts, onMessage)
          : push(endpoint, group, topic, opts, onMessage),
      );
    },
    async close() {},
  };
}

/** PushConsumer: the handler returns at once; the SDK acks each message. */
function push(
  endpoint: string,
  group: string,
  topic: string,
  opts: ConsumeOptions,
  onMessage: (body: string) => void,
): Consumer {
  const consumer = new PushConsumer({
    endpoint,
    group,
    topic,
    concurrency: opts.window,
    handler: (m) => onMessage(m.body),
  });
  let failure: unknown;
  consumer.addEventListener("error", (e) => {
    failure ??= (e as CustomEvent).detail?.error;
  });
  return {
    async stop() {
      await consumer.shutdown();
      if (failure) throw failure;
    },
  };
}

/**
 * SimpleConsumer: receive up to `window` messages, then ack each of them
 * (one `ackMany`, one receipt per message); the acks of one batch overlap
 * the next receive, never more than one batch of acks in flight.
 */
function simple(
  endpoint: string,
  group: string,
  topic: string,
  opts: ConsumeOptions,
  onMessage: (body: string) => void,
): Consumer {
  const consumer = new SimpleConsumer({ endpoint, group, topic });
  const abort = new AbortController();
  let acking: Promise<void> = Promise.resolve();
  let failure: unknown;
  // Caught at once (an ack batch is awaited only after the next receive).
  const ackAll = (messages: Message[]) =>
    consumer.ackMany(messages).then(
      (results) => {
        const bad = results.find((r) => "error" in r);
        if (bad) failure ??= new Error(`ack failed: ${JSON.stringify(bad)}`);
      },
      (e: unknown) => void (failure ??= e),
    );
  const loop = (async () => {
    while (!abort.signal.aborted) {
      let messages: Message[];
      try {
        messages = await consumer.receive({ max: opts.window, signal: abort.signal });
      } catch (e) {
        if (abort.signal.aborted) break;
        throw e;
      }
      for (const m of messages) onMessage(m.body);
      await acking;
      if (messages.length) acking = ackAll(messages);
    }
    await acking;
  })();
  loop.catch(() => {}); // rethrown by stop()
  return {
    async stop() {
      abort.abort(new DOMException("stopped", "AbortError"));
      await loop;
      if (failure) throw failure;
    },
  };
}
