/**
 * Issue 16, item 8: a Durable Object error that the platform marks as
 * passing (retryable, reset, overloaded) answers 503 UNAVAILABLE with
 * Retry-After, so clients back off and retry, instead of a 500 that reads as
 * a bug. The real case here: a shard reset (`ctx.abort()`) while a long-poll
 * pull holds its stub.
 */
import { runInDurableObject } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { unavailable } from "../../src/gateway/service.ts";
import { ADMIN, createTopic, shardStub } from "./helpers.ts";
import { expectError } from "./token-helpers.ts";

describe("Durable Object errors that pass", () => {
  it("answer 503 with Retry-After when a shard is reset under a long-poll", async () => {
    const topic = await createTopic({ queues: 1 });
    const pending = exports.default.fetch(
      new Request(`http://edgemq.test/v1/topics/${topic}/queues/0/messages?offset=0&waitMs=5000`, {
        headers: ADMIN,
      }),
    );
    // Wait until the pull watches the shard (its watcher socket is open).
    await expect
      .poll(() =>
        runInDurableObject(shardStub(topic, 0), (_i, state) => state.getWebSockets().length),
      )
      .toBe(1);
    await runInDurableObject(shardStub(topic, 0), (_i, state) => {
      state.abort("reset under test");
    }).catch(() => {});
    const res = await pending;
    const body = (await res.json()) as any;
    expectError({ status: res.status, body }, 503, "UNAVAILABLE");
    expect(res.headers.get("retry-after")).toBe("1");
    // The shard comes back on the next request.
    const again = await exports.default.fetch(
      new Request(`http://edgemq.test/v1/topics/${topic}/queues/0/messages?offset=0`, {
        headers: ADMIN,
      }),
    );
    expect(again.status).toBe(200);
  });

  it("map the platform's flags: overloaded waits longer than retryable or reset", () => {
    const flagged = (flags: object) => Object.assign(new Error("x"), flags);
    expect(unavailable(flagged({ overloaded: true }))?.details).toEqual({ retryAfterSeconds: 5 });
    expect(unavailable(flagged({ retryable: true }))?.details).toEqual({ retryAfterSeconds: 1 });
    expect(unavailable(flagged({ durableObjectReset: true }))?.status).toBe(503);
    expect(unavailable(new Error("a bug"))).toBeUndefined();
    expect(unavailable(flagged({ retryable: false }))).toBeUndefined();
  });
});
