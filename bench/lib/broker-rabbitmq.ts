/**
 * RabbitMQ in the side-by-side benchmark: each destination is a classic
 * durable queue; a send is a persistent message (delivery mode 2) on a
 * confirm channel, resolved by its publisher confirm (sent once the message
 * is on disk, fsync included); a consumer has `prefetch(window)` and acks
 * each message on its own (no `multiple`).
 */
import { type ChannelModel, connect } from "amqplib";
import type { Broker, Consumer, Sender } from "./broker.ts";

const FILL_BATCH = 1000;

export async function rabbitBroker(port: number, pid: number): Promise<Broker> {
  const url = `amqp://guest:guest@127.0.0.1:${port}`;
  const open = new Set<ChannelModel>();
  const connection = async () => {
    const c = await connect(url);
    open.add(c);
    return c;
  };
  const closeConnection = async (c: ChannelModel) => {
    open.delete(c);
    await c.close();
  };
  const admin = await connection();
  const adminChannel = await admin.createConfirmChannel();
  let seq = 0;
  return {
    name: "rabbitmq",
    pid,
    async destination(label) {
      const queue = `peers-${label}-${++seq}`;
      await adminChannel.assertQueue(queue, {
        durable: true,
        arguments: { "x-queue-type": "classic" },
      });
      return queue;
    },
    async sender(queue): Promise<Sender> {
      const c = await connection();
      const ch = await c.createConfirmChannel();
      return {
        send: (body) =>
          new Promise<void>((resolve, reject) => {
            ch.sendToQueue(queue, Buffer.from(body), { persistent: true }, (err) =>
              err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve(),
            );
          }),
        close: () => closeConnection(c),
      };
    },
    async fill(queue, n, body) {
      const content = Buffer.from(body);
      for (let left = n; left > 0; left -= FILL_BATCH) {
        for (let i = 0; i < Math.min(FILL_BATCH, left); i++) {
          adminChannel.sendToQueue(queue, content, { persistent: true });
        }
        await adminChannel.waitForConfirms();
      }
    },
    async consume(queue, opts, onMessage): Promise<Consumer> {
      const c = await connection();
      const ch = await c.createChannel();
      await ch.prefetch(opts.window);
      const { consumerTag } = await ch.consume(
        queue,
        (m) => {
          if (!m) return;
          onMessage(m.content.toString());
          ch.ack(m);
        },
        { noAck: false },
      );
      return {
        async stop() {
          await ch.cancel(consumerTag);
          // A round trip on the channel: the acks written before it were processed.
          await ch.checkQueue(queue);
          await closeConnection(c);
        },
      };
    },
    async close() {
      await Promise.all([...open].map((c) => closeConnection(c)));
    },
  };
}
