/**
 * NATS JetStream in the side-by-side benchmark: each destination is a
 * file-store stream with one subject and one replica; a send is
 * `js.publish`, resolved by the stream's PubAck; a consumer is a durable
 * pull consumer with explicit acks, read with `consume()` (the client keeps
 * `window` messages requested) and `ack()` of each message.
 */
import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  StorageType,
} from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { Broker, Consumer, Sender } from "./broker.ts";

const FILL_IN_FLIGHT = 1000;

export async function natsBroker(port: number, pid: number): Promise<Broker> {
  const servers = `127.0.0.1:${port}`;
  const open = new Set<NatsConnection>();
  const connection = async () => {
    const nc = await connect({ servers, noEcho: true });
    open.add(nc);
    return nc;
  };
  const closeConnection = async (nc: NatsConnection) => {
    open.delete(nc);
    await nc.close();
  };
  const admin = await connection();
  const jsm = await jetstreamManager(admin);
  let seq = 0;
  return {
    name: "nats",
    pid,
    async destination(label) {
      const name = `peers_${label.replace(/[^A-Za-z0-9_-]/g, "_")}_${++seq}`;
      await jsm.streams.add({
        name,
        subjects: [name],
        storage: StorageType.File,
        num_replicas: 1,
      });
      return name;
    },
    async sender(subject): Promise<Sender> {
      const nc = await connection();
      const js = jetstream(nc);
      return {
        async send(body) {
          await js.publish(subject, body);
        },
        close: () => closeConnection(nc),
      };
    },
    async fill(subject, n, body) {
      const js = jetstream(admin);
      let left = n;
      await Promise.all(
        Array.from({ length: Math.min(FILL_IN_FLIGHT, n) }, async () => {
          while (left-- > 0) await js.publish(subject, body);
        }),
      );
    },
    async consume(stream, opts, onMessage): Promise<Consumer> {
      await jsm.consumers.add(stream, {
        durable_name: "bench",
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
      });
      const nc = await connection();
      const consumer = await jetstream(nc).consumers.get(stream, "bench");
      const messages = await consumer.consume({
        max_messages: opts.window,
        callback: (m) => {
          onMessage(m.string());
          m.ack();
        },
      });
      return {
        async stop() {
          await messages.close();
          // A round trip: every ack written before it has reached the server.
          await nc.flush();
          await closeConnection(nc);
        },
      };
    },
    async close() {
      await Promise.all([...open].map((nc) => closeConnection(nc)));
    },
  };
}
