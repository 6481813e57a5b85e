/**
 * The PUT body of a push subscription (src/protocol/requests/push.ts) and
 * how it merges over the stored config (src/protocol/push.ts): every bad
 * field refused naming it; http:// only to loopback unless the broker is
 * local; the topic fixed once set.
 */
import { describe, expect, it } from "vitest";
import { mergePush } from "../../src/protocol/push.ts";
import { parsePushInput } from "../../src/protocol/requests/push.ts";

const deployed = { local: false };
const local = { local: true };

function refusal(body: unknown, opts = deployed, code = "BAD_REQUEST"): string {
  try {
    parsePushInput(body, opts);
  } catch (e) {
    expect((e as { code?: string }).code).toBe(code);
    return (e as Error).message;
  }
  throw new Error(`accepted ${JSON.stringify(body)}`);
}

describe("parsePushInput", () => {
  it("reads every field", () => {
    expect(
      parsePushInput(
        {
          topic: "orders",
          url: "https://hooks.example.com/edgemq#frag",
          filter: "TagA || TagB",
          maxConcurrency: 16,
          timeoutMs: 2000,
          maxReconsumeTimes: 3,
          retryDelaysMs: [100, 200],
          orderly: true,
          paused: false,
          rotateSecret: true,
        },
        deployed,
      ),
    ).toEqual({
      topic: "orders",
      url: "https://hooks.example.com/edgemq",
      filter: "TagA || TagB",
      maxConcurrency: 16,
      timeoutMs: 2000,
      maxReconsumeTimes: 3,
      retryDelaysMs: [100, 200],
      orderly: true,
      paused: false,
      rotateSecret: true,
    });
  });

  it("takes http:// to loopback hosts anywhere, to other hosts only on a local broker", () => {
    for (const url of ["http://127.0.0.1:9/x", "http://localhost/x", "http://[::1]:80/x"]) {
      expect(parsePushInput({ url }, deployed).url).toBe(new URL(url).toString());
    }
    expect(refusal({ url: "http://hooks.example.com/x" })).toMatch(/^url .*https:\/\//);
    expect(parsePushInput({ url: "http://hooks.example.com/x" }, local).url).toBe(
      "http://hooks.example.com/x",
    );
  });

  it("refuses each bad field, naming it", () => {
    expect(refusal({ url: "ftp://x/y" })).toMatch(/^url/);
    expect(refusal({ url: "javascript:alert(1)" })).toMatch(/^url/);
    expect(refusal({ url: 42 })).toMatch(/^url/);
    expect(refusal({ url: `https://x/${"a".repeat(3000)}` })).toMatch(/^url/);
    expect(refusal({ url: "https://u:p@x/y" })).toMatch(/^url/);
    expect(refusal({ topic: "no spaces" }, deployed, "INVALID_NAME")).toMatch(/^topic/);
    expect(refusal({ maxConcurrency: 0 })).toMatch(/^maxConcurrency/);
    expect(refusal({ maxConcurrency: 257 })).toMatch(/^maxConcurrency/);
    expect(refusal({ maxConcurrency: 1.5 })).toMatch(/^maxConcurrency/);
    expect(refusal({ timeoutMs: 99 })).toMatch(/^timeoutMs/);
    expect(refusal({ timeoutMs: 120_001 })).toMatch(/^timeoutMs/);
    expect(refusal({ maxReconsumeTimes: -1 })).toMatch(/^maxReconsumeTimes/);
    expect(refusal({ retryDelaysMs: [] })).toMatch(/^retryDelaysMs/);
    expect(refusal({ retryDelaysMs: [-1] })).toMatch(/^retryDelaysMs/);
    expect(refusal({ orderly: "yes" })).toMatch(/^orderly/);
    expect(refusal({ paused: 1 })).toMatch(/^paused/);
    expect(refusal({ filter: "sql:(" })).toMatch(/filter/);
    expect(refusal({ nope: true })).toMatch(/nope/);
    expect(refusal([])).toMatch(/body/);
  });
});

describe("mergePush", () => {
  it("needs topic and url on create, and fills the defaults", () => {
    expect(() => mergePush("h", null, { url: "https://x/" }, 1)).toThrow(/topic/);
    expect(() => mergePush("h", null, { topic: "t" }, 1)).toThrow(/url/);
    expect(mergePush("h", null, { topic: "t", url: "https://x/" }, 1)).toMatchObject({
      name: "h",
      filter: "*",
      maxConcurrency: 8,
      timeoutMs: 10_000,
      maxReconsumeTimes: 16,
      orderly: false,
      paused: false,
      createdAt: 1,
      updatedAt: 1,
    });
  });

  it("keeps what an update leaves out, and refuses another topic", () => {
    const first = mergePush("h", null, { topic: "t", url: "https://x/", timeoutMs: 500 }, 1);
    const next = mergePush("h", first, { paused: true }, 2);
    expect(next).toMatchObject({
      topic: "t",
      timeoutMs: 500,
      paused: true,
      createdAt: 1,
      updatedAt: 2,
    });
    expect(() => mergePush("h", first, { topic: "other" }, 3)).toThrow(/topic cannot change/);
  });
});
