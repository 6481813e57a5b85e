/**
 * The shape of the broker's RPC entrypoint (`EdgemqRpc`), reached from
 * another Worker on the same account through a Service Binding: no HTTP, no
 * token. `request` speaks the whole HTTP contract (same paths, bodies and
 * answers) so the SDK needs one code path for both transports; the named
 * methods are typed shortcuts for the data path.
 */
import type { AckResult, Message, MessageInput, PullResult, SendResult } from "./types.ts";

/** An answer of {@link EdgemqRpcApi.request}: the HTTP status and the JSON body. */
export interface RpcAnswer {
  status: number;
  body: unknown;
}

export interface ReceiveOptions {
  max?: number;
  invisibleMs?: number;
  waitMs?: number;
  filter?: string;
}

export interface PullOptions {
  offset?: number;
  group?: string;
  max?: number;
  waitMs?: number;
  filter?: string;
}

export interface EdgemqRpcApi {
  /** Any contract call: `request("POST", "/v1/topics/t/messages", {messages})`. */
  request(method: string, path: string, body?: unknown): Promise<RpcAnswer>;
  send(topic: string, messages: MessageInput[], queue?: number): Promise<{ results: SendResult[] }>;
  receive(group: string, topic: string, options?: ReceiveOptions): Promise<{ messages: Message[] }>;
  ack(group: string, topic: string, receipts: string[]): Promise<{ results: AckResult[] }>;
  nack(
    group: string,
    topic: string,
    receipts: string[],
    delayMs?: number,
  ): Promise<{ results: AckResult[] }>;
  pull(topic: string, queue: number, options?: PullOptions): Promise<PullResult>;
}
