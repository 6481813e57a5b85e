/**
 * The gateway's isolate caches give every fact a lifetime (issue 15, item 8).
 * On Cloudflare many isolates run the gateway; a group deleted and recreated
 * through one of them must not lose its topics in another, whose cache still
 * says the subscription was recorded. Here the "other isolate" is the
 * registry called directly, past this isolate's gateway.
 */
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Limits } from "../../src/protocol/limits.ts";
import { api, createTopic, unique } from "./helpers.ts";
import { deadLetters, nack, receive, send } from "./consume-helpers.ts";

afterEach(() => {
  vi.useRealTimers();
});

const registry = () => env.REGISTRY.get(env.REGISTRY.idFromName("registry"));

/** Puts one message of `topic` in the group's dead-letter queue (maxReconsumeTimes 0, one nack). */
async function deadLetter(group: string, topic: string, body: string): Promise<void> {
  await send(topic, [body]);
  const [m] = await receive(group, topic);
  expect(m?.body).toBe(body);
  await nack(group, topic, [m.receipt]);
}

describe("a group deleted and recreated", () => {
  it("through this gateway keeps its topics in the group view and its dead letters listed", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    await api("PUT", `/v1/groups/${group}`, { maxReconsumeTimes: 0 });
    await deadLetter(group, topic, "before");

    expect((await api("DELETE", `/v1/groups/${group}`)).status).toBe(200);
    await api("PUT", `/v1/groups/${group}`, { maxReconsumeTimes: 0 });
    await deadLetter(group, topic, "after");

    const view = await api("GET", `/v1/groups/${group}`);
    expect(Object.keys(view.body.topics)).toEqual([topic]);
    expect((await deadLetters(group)).map((m) => m.body)).toContain("after");
  });

  it("elsewhere (another isolate) gets its topics back once this isolate's cached subscription expires", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    await api("PUT", `/v1/groups/${group}`, { maxReconsumeTimes: 0 });
    await deadLetter(group, topic, "before");

    // Deleted and recreated past this isolate: its caches still hold the old facts.
    await registry().deleteGroup(group);
    await registry().putGroup(group, { maxReconsumeTimes: 0 });
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + Limits.routeCacheMs + 1000);
    await deadLetter(group, topic, "after");

    const view = await api("GET", `/v1/groups/${group}`);
    expect(Object.keys(view.body.topics)).toEqual([topic]);
    expect((await deadLetters(group)).map((m) => m.body)).toContain("after");
  });
});
