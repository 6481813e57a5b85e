/**
 * Helpers of the receive/ack, retry, orderly and membership tests: thin
 * wrappers over the HTTP contract, and ways to move a shard's timers into the
 * past (in its SQLite) instead of sleeping.
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import { expect } from "vitest";
import { api, shardStub } from "./helpers.ts";

export type Sent = {
  body: string;
  shardingKey?: string;
  tag?: string;
  msgId?: string;
  properties?: Record<string, string>;
};

/** Sends messages (strings are bodies); optionally pinned to a queue. Returns the send results. */
export async function send(
  topic: string,
  messages: (string | Sent)[],
  queue?: number,
): Promise<any[]> {
  const q = queue === undefined ? "" : `?queue=${queue}`;
  const r = await api("POST", `/v1/topics/${topic}/messages${q}`, {
    messages: messages.map((m) => (typeof m === "string" ? { body: m } : m)),
  });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.results;
}

/** POST …/receive; answers the raw response. */
export function receiveRaw(group: string, topic: string, body: Record<string, unknown> = {}) {
  return api("POST", `/v1/groups/${group}/topics/${topic}/receive`, body);
}

/** Receives and expects 200; answers the messages. */
export async function receive(
  group: string,
  topic: string,
  body: Record<string, unknown> = {},
): Promise<any[]> {
  const r = await receiveRaw(group, topic, body);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.messages;
}

/** Receives until an answer comes back empty (at most `rounds` calls). */
export async function drain(
  group: string,
  topic: string,
  body: Record<string, unknown> = {},
  rounds = 50,
) {
  const all: any[] = [];
  for (let i = 0; i < rounds; i++) {
    const got = await receive(group, topic, body);
    if (got.length === 0) return all;
    all.push(...got);
  }
  throw new Error(`still receiving after ${rounds} rounds`);
}

export function ackRaw(group: string, topic: string, receipts: unknown) {
  return api("POST", `/v1/groups/${group}/topics/${topic}/ack`, { receipts });
}

/** Acks and expects 200; answers the per-receipt results. */
export async function ack(group: string, topic: string, receipts: string[]): Promise<any[]> {
  const r = await ackRaw(group, topic, receipts);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.results;
}

export function nackRaw(group: string, topic: string, receipts: unknown, delayMs?: unknown) {
  return api("POST", `/v1/groups/${group}/topics/${topic}/nack`, {
    receipts,
    ...(delayMs !== undefined && { delayMs }),
  });
}

export async function nack(
  group: string,
  topic: string,
  receipts: string[],
  delayMs?: number,
): Promise<any[]> {
  const r = await nackRaw(group, topic, receipts, delayMs);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.results;
}

export function invisibility(group: string, topic: string, receipt: unknown, invisibleMs: unknown) {
  return api("POST", `/v1/groups/${group}/topics/${topic}/invisibility`, { receipt, invisibleMs });
}

/** The group's stats for one topic, by queue. */
export async function groupStats(group: string, topic: string): Promise<any[]> {
  const r = await api("GET", `/v1/groups/${group}`);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.topics[topic];
}

/** Total of one stat over a topic's queues. */
export async function statTotal(
  group: string,
  topic: string,
  key: "inflight" | "retrying" | "dlq" | "lag",
) {
  return (await groupStats(group, topic)).reduce((n, s) => n + s[key], 0);
}

export async function deadLetters(group: string): Promise<any[]> {
  const r = await api("GET", `/v1/groups/${group}/dlq/messages`);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.messages;
}

import { makeDue } from "./storage-sql.ts";

export { inflightRows, makeDue } from "./storage-sql.ts";

/** Runs a queue shard's alarm now (answers whether one was armed). */
export function fireAlarm(topic: string, queue: number): Promise<boolean> {
  return runDurableObjectAlarm(shardStub(topic, queue));
}

/** Lapses the group's receipts on one queue and lets the alarm turn them into retries or dead letters. */
export async function lapse(topic: string, queue: number, group: string): Promise<void> {
  await makeDue(topic, queue, group);
  await fireAlarm(topic, queue);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Receipts of messages. */
export const receipts = (ms: any[]): string[] => ms.map((m) => m.receipt);
