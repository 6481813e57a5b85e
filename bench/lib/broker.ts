/**
 * What the side-by-side benchmark (bench/peers.ts) needs from a broker, so
 * each shape is one piece of code run against edgemq, NATS JetStream and
 * RabbitMQ alike. Every message is acknowledged by the broker before a send
 * resolves, and each consumed message gets its own ack.
 */

export type BrokerName = "edgemq" | "nats" | "rabbitmq";

/** One publishing client (its own connection, or its own SDK Producer). */
export interface Sender {
  /** Resolves once the broker acknowledged the message. */
  send(body: string): Promise<void>;
  close(): Promise<void>;
}

/** A running consumer. */
export interface Consumer {
  /** Stops taking messages, waits for those in hand and until their acks have reached the broker. */
  stop(): Promise<void>;
}

export interface ConsumeOptions {
  /**
   * Messages held unacknowledged at most (the credit window: AMQP's
   * prefetch, JetStream's pull batch, PushConsumer's concurrency,
   * SimpleConsumer's receive max).
   */
  window: number;
  /** edgemq only: which SDK consumer. Default `push`. */
  style?: "push" | "simple";
}

export interface Broker {
  readonly name: BrokerName;
  /** The server process whose CPU is measured (descendants included). */
  readonly pid: number;
  /** A fresh destination: a topic with one queue, a stream, a durable queue. */
  destination(label: string): Promise<string>;
  /** A new sender to `dest`. */
  sender(dest: string): Promise<Sender>;
  /** Stores `n` copies of `body` quickly (set-up, not measured). */
  fill(dest: string, n: number, body: string): Promise<void>;
  /** Starts consuming `dest`; `onMessage` runs once per message before its ack. */
  consume(dest: string, opts: ConsumeOptions, onMessage: (body: string) => void): Promise<Consumer>;
  /** Closes every connection this broker object opened (the server keeps running). */
  close(): Promise<void>;
}
