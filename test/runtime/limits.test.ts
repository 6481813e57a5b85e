import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ADMIN, api, createTopic, unique } from "./helpers.ts";
import { expectError } from "./token-helpers.ts";

/** Sends raw bytes (or a stream) to the gateway as admin. */
async function raw(
  method: string,
  path: string,
  body: BodyInit | null,
  headers: Record<string, string> = ADMIN,
) {
  const res = await exports.default.fetch(
    new Request(`http://edgemq.test${path}`, {
      method,
      headers,
      body,
      ...(body instanceof ReadableStream && { duplex: "half" }),
    }),
  );
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = text;
  }
  return { status: res.status, body: parsed as any };
}

async function storedMessages(topic: string): Promise<number> {
  const r = await api("GET", `/v1/topics/${topic}`);
  return (r.body.queueStats as { messages: number }[]).reduce((n, q) => n + q.messages, 0);
}

const send = (topic: string, body: unknown) => api("POST", `/v1/topics/${topic}/messages`, body);

describe("body and batch limits", () => {
  it("refuses a body over 4 MiB with 413 and stores nothing", async () => {
    const topic = await createTopic({ queues: 1 });
    const body = JSON.stringify({ messages: [{ body: "x".repeat(4 * 1024 * 1024) }] });
    expectError(await send(topic, body), 413, "BATCH_TOO_LARGE");
    expect(await storedMessages(topic)).toBe(0);
  });

  it("refuses an over-long streamed body without Content-Length", async () => {
    const topic = await createTopic({ queues: 1 });
    const chunk = new TextEncoder().encode("x".repeat(64 * 1024));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(ctrl) {
        // Bounded: 5 MiB at most, whatever the server does.
        if (sent >= 5 * 1024 * 1024) return ctrl.close();
        sent += chunk.byteLength;
        ctrl.enqueue(
          sent === chunk.byteLength ? new TextEncoder().encode('{"messages":[{"body":"') : chunk,
        );
      },
    });
    expectError(await raw("POST", `/v1/topics/${topic}/messages`, stream), 413, "BATCH_TOO_LARGE");
    expect(await storedMessages(topic)).toBe(0);
  });

  it("refuses a batch of more than 1000 messages with 413", async () => {
    const topic = await createTopic({ queues: 1 });
    const messages = Array.from({ length: 1001 }, (_, i) => ({ body: String(i) }));
    expectError(await send(topic, { messages }), 413, "BATCH_TOO_LARGE");
    expect(await storedMessages(topic)).toBe(0);
  });

  it("refuses a message over the topic's size with 413, and stores none of the batch", async () => {
    const topic = await createTopic({ queues: 1, maxMessageBytes: 100 });
    const r = await send(topic, { messages: [{ body: "ok" }, { body: "y".repeat(101) }] });
    expect(r.status).toBe(413);
    expect(r.body.error.code).toBe("MESSAGE_TOO_LARGE");
    expect(await storedMessages(topic)).toBe(0);
  });
});

describe("ack and nack bodies (issue 16, item 8)", () => {
  it("refuses an ack or nack body over 64 KiB with 413 and settles nothing", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    await send(topic, { messages: [{ body: "held" }] });
    const got = await api("POST", `/v1/groups/${group}/topics/${topic}/receive`, { max: 1 });
    const receipt: string = got.body.messages[0].receipt;
    // The real receipt first, then padding past the bound.
    const padded = { receipts: [receipt], pad: "x".repeat(64 * 1024) };
    for (const kind of ["ack", "nack"]) {
      expectError(
        await api("POST", `/v1/groups/${group}/topics/${topic}/${kind}`, padded),
        413,
        "BATCH_TOO_LARGE",
      );
    }
    const stats = await api("GET", `/v1/groups/${group}/topics/${topic}/offsets`);
    expect(stats.body.offsets[0].lag).toBe(1);
    const inflight = (await api("GET", `/v1/groups/${group}`)).body.topics[topic][0].inflight;
    expect(inflight).toBe(1);
    // Within the bound the same receipt still acks.
    const ok = await api("POST", `/v1/groups/${group}/topics/${topic}/ack`, {
      receipts: [receipt],
    });
    expect(ok.body.results).toEqual([{ receipt, ok: true }]);
  });
});

describe("encodings", () => {
  it.each([
    ["a lone continuation byte", [0x80]],
    ["an overlong encoding", [0xc0, 0xaf]],
    ["a truncated sequence", [0xe2, 0x82]],
    ["an encoded surrogate", [0xed, 0xa0, 0x80]],
    ["a byte that is never UTF-8", [0xff]],
  ])("refuses a body holding %s with 400, never storing replacement characters", async (_, bad) => {
    const topic = await createTopic({ queues: 1 });
    const enc = new TextEncoder();
    const bytes = new Uint8Array([
      ...enc.encode('{"messages":[{"body":"a'),
      ...bad,
      ...enc.encode('b"}]}'),
    ]);
    expectError(await raw("POST", `/v1/topics/${topic}/messages`, bytes), 400, "BAD_REQUEST");
    expect(await storedMessages(topic)).toBe(0);
  });

  it.each([
    ["body", '{"body":"a\\ud800b"}'],
    ["body (low half)", '{"body":"\\udc00"}'],
    ["tag", '{"body":"a","tag":"t\\ud800"}'],
    ["keys", '{"body":"a","keys":["k\\udfff"]}'],
    ["a property value", '{"body":"a","properties":{"p":"\\ud83d"}}'],
    ["msgId", '{"body":"a","msgId":"\\ud800"}'],
    ["shardingKey", '{"body":"a","shardingKey":"\\udbff"}'],
  ])("refuses a lone surrogate escape in %s with 400", async (_, message) => {
    const topic = await createTopic({ queues: 1 });
    expectError(
      await raw("POST", `/v1/topics/${topic}/messages`, `{"messages":[${message}]}`),
      400,
      "BAD_REQUEST",
    );
    expect(await storedMessages(topic)).toBe(0);
  });

  it("stores a valid surrogate pair as is", async () => {
    const topic = await createTopic({ queues: 1 });
    expect(
      (
        await raw(
          "POST",
          `/v1/topics/${topic}/messages`,
          '{"messages":[{"body":"\\ud83d\\ude00"}]}',
        )
      ).status,
    ).toBe(200);
    const pulled = await api("GET", `/v1/topics/${topic}/queues/0/messages?offset=0`);
    expect(pulled.body.messages[0].body).toBe("😀");
  });

  it("refuses invalid base64 and unknown encodings with 400", async () => {
    const topic = await createTopic({ queues: 1 });
    expectError(
      await send(topic, { messages: [{ body: "not base64!", encoding: "base64" }] }),
      400,
      "BAD_REQUEST",
    );
    expectError(
      await send(topic, { messages: [{ body: "x", encoding: "latin1" }] }),
      400,
      "BAD_REQUEST",
    );
    expect(await storedMessages(topic)).toBe(0);
  });
});

describe("JSON shape", () => {
  it.each([
    ["deeply nested arrays", "[".repeat(200_000) + "]".repeat(200_000)],
    ["deeply nested objects", '{"a":'.repeat(100_000) + "1" + "}".repeat(100_000)],
    [
      "a deep value inside a message",
      `{"messages":[{"body":"x","properties":${'{"a":'.repeat(50_000)}1${"}".repeat(50_000)}}]}`,
    ],
    [
      "a deep unknown field",
      `{"messages":[{"body":"x"}],"extra":${"[".repeat(50_000)}${"]".repeat(50_000)}}`,
    ],
    ["unbalanced nesting", "[".repeat(100_000)],
  ])("refuses %s with 400, not 500", async (_, text) => {
    const topic = await createTopic({ queues: 1 });
    expectError(await raw("POST", `/v1/topics/${topic}/messages`, text), 400, "BAD_REQUEST");
    expect(await storedMessages(topic)).toBe(0);
  });

  it("refuses deep JSON on every JSON route, not just send", async () => {
    const g = unique("g");
    // Small enough for the 64 KiB bound of these routes: the depth check must answer, not the size one.
    const deep = "[".repeat(20_000) + "]".repeat(20_000);
    for (const [m, p] of [
      ["POST", "/v1/tokens"],
      ["PUT", `/v1/topics/${unique("t")}`],
      ["PUT", `/v1/groups/${g}`],
      ["POST", `/v1/groups/${g}/heartbeat`],
      ["PUT", "/v1/producer-groups/pg"],
    ]) {
      const r = await raw(m!, p!, deep);
      expect({ p, status: r.status }).toEqual({ p, status: 400 });
      expect(r.body.error.code).toBe("BAD_REQUEST");
    }
  });

  it.each([
    ["empty", ""],
    ["not JSON", "messages=1"],
    ["truncated", '{"messages":[{"body":"x"}'],
    ["a number", "42"],
    ["null", "null"],
    ["an array", '[{"body":"x"}]'],
    ["messages as an object", '{"messages":{"body":"x"}}'],
    ["an empty batch", '{"messages":[]}'],
    ["a message that is a string", '{"messages":["x"]}'],
    ["a body that is a number", '{"messages":[{"body":1}]}'],
    ["a body that is null", '{"messages":[{"body":null}]}'],
    ["an unknown message field", '{"messages":[{"body":"x","evil":1}]}'],
    ["a huge priority", '{"messages":[{"body":"x","priority":1e400}]}'],
    ["a fractional priority", '{"messages":[{"body":"x","priority":4.5}]}'],
    ["a negative delay", '{"messages":[{"body":"x","delayMs":-1}]}'],
    ["a delay over 40 days", '{"messages":[{"body":"x","delayMs":3456000001}]}'],
    ["an unsafe integer", '{"messages":[{"body":"x","deliverAt":9007199254740993}]}'],
    ["a string priority", '{"messages":[{"body":"x","priority":"5"}]}'],
    ["two delays", '{"messages":[{"body":"x","delayMs":5,"delayLevel":1}]}'],
    ["a delay level out of range", '{"messages":[{"body":"x","delayLevel":19}]}'],
    ["keys that are not strings", '{"messages":[{"body":"x","keys":[1]}]}'],
    [
      "too many keys",
      `{"messages":[{"body":"x","keys":${JSON.stringify(Array.from({ length: 33 }, (_, i) => `k${i}`))}}]}`,
    ],
    ["properties that are an array", '{"messages":[{"body":"x","properties":["a"]}]}'],
    ["a property value that is a number", '{"messages":[{"body":"x","properties":{"a":1}}]}'],
    [
      "a property name that is not an identifier",
      '{"messages":[{"body":"x","properties":{"a b":"1"}}]}',
    ],
    ["a property named __proto__", '{"messages":[{"body":"x","properties":{"__proto__":"1"}}]}'],
    ["a tag of *", '{"messages":[{"body":"x","tag":"*"}]}'],
    ["a tag holding ||", '{"messages":[{"body":"x","tag":"a||b"}]}'],
  ])("refuses a send with %s with 400 and stores nothing", async (_, text) => {
    const topic = await createTopic({ queues: 1 });
    const r = await raw("POST", `/v1/topics/${topic}/messages`, text);
    expectError(r, 400, "BAD_REQUEST");
    expect(await storedMessages(topic)).toBe(0);
  });

  it("refuses too many properties and oversize property names and values", async () => {
    const topic = await createTopic({ queues: 1 });
    const many = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`p${i}`, "v"]));
    expectError(
      await send(topic, { messages: [{ body: "x", properties: many }] }),
      400,
      "BAD_REQUEST",
    );
    expectError(
      await send(topic, { messages: [{ body: "x", properties: { p: "v".repeat(4097) } }] }),
      400,
      "BAD_REQUEST",
    );
    expectError(
      await send(topic, { messages: [{ body: "x", properties: { ["n".repeat(129)]: "v" } }] }),
      400,
      "BAD_REQUEST",
    );
    expectError(
      await send(topic, { messages: [{ body: "x", tag: "t".repeat(257) }] }),
      400,
      "BAD_REQUEST",
    );
    expectError(
      await send(topic, { messages: [{ body: "x", msgId: "m".repeat(129) }] }),
      400,
      "BAD_REQUEST",
    );
    // A batch with one bad message among good ones stores none of them.
    expectError(
      await send(topic, { messages: [{ body: "good" }, { body: "x", properties: many }] }),
      400,
      "BAD_REQUEST",
    );
    expect(await storedMessages(topic)).toBe(0);
    const full = Object.fromEntries(
      Array.from({ length: 64 }, (_, i) => [`p${i}`, "v".repeat(4096)]),
    );
    expect((await send(topic, { messages: [{ body: "x", properties: full }] })).status).toBe(200);
  });
});

describe("query and path numbers", () => {
  it.each([
    ["queue=-1", "/queues/-1/messages?offset=0"],
    ["queue=64", "/queues/64/messages?offset=0"],
    ["queue=1e3", "/queues/1e3/messages?offset=0"],
    ["a huge queue", "/queues/99999999999999999999/messages?offset=0"],
    ["offset=-1", "/queues/0/messages?offset=-1"],
    ["offset=abc", "/queues/0/messages?offset=abc"],
    ["offset=0x10", "/queues/0/messages?offset=0x10"],
    ["an unsafe offset", "/queues/0/messages?offset=9007199254740993"],
    ["max=0", "/queues/0/messages?offset=0&max=0"],
    ["max=1001", "/queues/0/messages?offset=0&max=1001"],
    ["waitMs=30001", "/queues/0/messages?offset=0&waitMs=30001"],
    ["a long filter", `/queues/0/messages?offset=0&filter=${"a".repeat(5000)}`],
    ["a bad filter", "/queues/0/messages?offset=0&filter=sql:(("],
  ])("refuses a pull with %s with 400", async (_, suffix) => {
    const topic = await createTopic({ queues: 1 });
    const r = await api("GET", `/v1/topics/${topic}${suffix}`);
    expect(r.status).toBe(400);
    expect(typeof r.body.error.message).toBe("string");
  });

  it("refuses out-of-range receive options with 400", async () => {
    const topic = await createTopic({ queues: 1 });
    const g = unique("g");
    for (const body of [
      { invisibleMs: 999 },
      { invisibleMs: 43_200_001 },
      { waitMs: -1 },
      { max: 0 },
      { max: "5" },
      { filter: 7 },
    ]) {
      expectError(
        await api("POST", `/v1/groups/${g}/topics/${topic}/receive`, body),
        400,
        "BAD_REQUEST",
      );
    }
  });

  it("refuses names outside the pattern with INVALID_NAME", async () => {
    for (const name of ["a".repeat(128), "a.b", "a%20b", "%C3%A9t%C3%A9", "a%2Fb"]) {
      expectError(await api("PUT", `/v1/topics/${name}`, {}), 400, "INVALID_NAME");
      expectError(await api("PUT", `/v1/groups/${name}`, {}), 400, "INVALID_NAME");
    }
  });
});

describe("header limits", () => {
  it("refuses an Authorization header over the token limit with 401", async () => {
    const r = await api("GET", "/v1/topics", undefined, {
      authorization: `Bearer ${"x".repeat(30 * 1024)}`,
    });
    expectError(r, 401, "UNAUTHORIZED");
  });

  it("refuses more than 100 header fields, or 48 KiB of headers, with 400", async () => {
    const many: Record<string, string> = { ...ADMIN };
    for (let i = 0; i < 100; i++) many[`x-h${i}`] = "v";
    expectError(await api("GET", "/v1/topics", undefined, many), 400, "BAD_REQUEST");
    expectError(
      await api("GET", "/v1/topics", undefined, { ...ADMIN, "x-big": "v".repeat(48 * 1024) }),
      400,
      "BAD_REQUEST",
    );
    const fine: Record<string, string> = { ...ADMIN, "x-big": "v".repeat(16 * 1024) };
    for (let i = 0; i < 90; i++) fine[`x-h${i}`] = "v";
    expect((await api("GET", "/v1/topics", undefined, fine)).status).toBe(200);
  });

  it("refuses a Content-Length over the limit before reading the body", async () => {
    const topic = await createTopic({ queues: 1 });
    const r = await raw("POST", `/v1/topics/${topic}/messages`, '{"messages":[{"body":"x"}]}', {
      ...ADMIN,
      "content-length": String(5 * 1024 * 1024),
    });
    // Either the runtime rejects the mismatched length or the gateway does: never stored.
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.status).toBeLessThan(500);
    expect(await storedMessages(topic)).toBe(0);
  });
});

describe("error shape", () => {
  it("answers unknown routes and methods in the contract's shape", async () => {
    expectError(await api("GET", "/v1/nothing-here"), 404, "NOT_FOUND");
    expectError(await api("PATCH", "/v1/topics"), 404, "NOT_FOUND");
    expectError(await api("GET", "/"), 404, "NOT_FOUND");
  });
});
