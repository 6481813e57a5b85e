/**
 * The order a request is checked in: the path's names, then the token's
 * permission for them, then the rest of the request (query and body), then
 * what needs the topic's config. A caller without the permission learns
 * nothing about the rest of its request, and no body is read for it.
 */
import { describe, expect, it } from "vitest";
import { api, createTopic, unique } from "./helpers.ts";
import { bearer, expectError, mint } from "./token-helpers.ts";

async function storedMessages(topic: string): Promise<number> {
  const r = await api("GET", `/v1/topics/${topic}`);
  return (r.body.queueStats as { messages: number }[]).reduce((n, q) => n + q.messages, 0);
}

describe("request checks, in order", () => {
  it("refuses a caller who may not publish before reading its body, however bad the body", async () => {
    const topic = await createTopic({ queues: 1 }, "orders");
    const h = bearer(await mint({ publish: ["payments*"] }));
    const bodies = ["{not json", JSON.stringify({ messages: [] }), "x".repeat(4 * 1024 * 1024 + 1)];
    for (const body of bodies) {
      expectError(await api("POST", `/v1/topics/${topic}/messages`, body, h), 403, "FORBIDDEN");
    }
    expectError(
      await api("POST", `/v1/topics/${topic}/transactions`, "{not json", h),
      403,
      "FORBIDDEN",
    );
    expect(await storedMessages(topic)).toBe(0);
  });

  it("checks names before the token, so a bad name is INVALID_NAME for anyone", async () => {
    const h = bearer(await mint({ subscribe: ["orders*"], groups: ["web-*"] }));
    expectError(
      await api("POST", `/v1/groups/bad.group/topics/orders/receive`, {}, h),
      400,
      "INVALID_NAME",
    );
    expectError(
      await api("GET", `/v1/topics/orders/queues/0/messages?group=bad.group`, undefined, h),
      400,
      "INVALID_NAME",
    );
  });

  it("checks a pull's group against the token before the rest of its query", async () => {
    const topic = await createTopic({ queues: 1 }, "orders");
    const h = bearer(await mint({ subscribe: ["orders*"], groups: ["web-*"] }));
    const q = `group=${unique("ops")}&max=0&filter=${encodeURIComponent("sql:(")}`;
    expectError(
      await api("GET", `/v1/topics/${topic}/queues/99/messages?${q}`, undefined, h),
      403,
      "FORBIDDEN",
    );
  });

  it("checks the request's own shape before its topic is looked up", async () => {
    const none = unique("none");
    const group = unique("g");
    const send = await api("POST", `/v1/topics/${none}/messages`, { messages: [{ body: 1 }] });
    expectError(send, 400, "BAD_REQUEST");
    expect(send.body.error.message).toBe("messages[0]: body is required and must be a string");
    const filter = await api("POST", `/v1/groups/${group}/topics/${none}/receive`, {
      filter: "sql:a >",
    });
    expectError(filter, 400, "BAD_REQUEST");
    expect(filter.body.error.position).toEqual(expect.any(Number));
    // A well-formed request to an unknown topic is TOPIC_NOT_FOUND, as before.
    expectError(
      await api("POST", `/v1/topics/${none}/messages`, { messages: [{ body: "x" }] }),
      404,
      "TOPIC_NOT_FOUND",
    );
  });

  it("checks what needs the topic once it is known: its queue count and message size", async () => {
    const topic = await createTopic({ queues: 2, maxMessageBytes: 16 });
    const pinned = await api("POST", `/v1/topics/${topic}/messages?queue=2`, {
      messages: [{ body: "x" }],
    });
    expectError(pinned, 400, "BAD_REQUEST");
    expect(pinned.body.error.message).toBe("queue must be an integer from 0 to 1");
    const big = await api("POST", `/v1/topics/${topic}/messages`, {
      messages: [{ body: "x" }, { body: "y".repeat(17) }],
    });
    expectError(big, 413, "MESSAGE_TOO_LARGE");
    expect(big.body.error).toMatchObject({
      message: "messages[1]: body is 17 bytes; the limit is 16",
      index: 1,
    });
    const tx = await api("POST", `/v1/topics/${topic}/transactions`, {
      message: { body: "z".repeat(17) },
      producerGroup: "pg",
    });
    expectError(tx, 413, "MESSAGE_TOO_LARGE");
    expect(await storedMessages(topic)).toBe(0);
  });
});
