/**
 * The SDK's push handler verifies the broker's signature (X-Edgemq-Timestamp
 * + X-Edgemq-Signature: v1=…, the check-back handler's verification) before
 * it hands a message to the application, and answers so the broker acks or
 * retries. Requests are signed here with the test's own HMAC, as api.md
 * writes the scheme.
 */
import { describe, expect, it } from "vitest";
import { type PushMessage, createPushHandler } from "../../client/push-handler.ts";

const secret = "push-signing-secret-0123456789abcdefghijklmn";
const NOW = 1_764_000_000_000;
const now = () => NOW;
const message: PushMessage = {
  msgId: "m-1",
  topic: "orders",
  queue: 0,
  offset: 7,
  body: "hello",
  encoding: "utf8",
  priority: 4,
  bornAt: NOW - 10,
  storedAt: NOW - 9,
  reconsumeTimes: 0,
};

async function hmacHex(key: string, text: string): Promise<string> {
  const enc = new TextEncoder();
  const k = await crypto.subtle.importKey(
    "raw",
    enc.encode(key),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", k, enc.encode(text)));
  return Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function post(body: string, opts: { key?: string; ts?: number; signature?: string } = {}) {
  const ts = opts.ts ?? NOW;
  const signature = opts.signature ?? `v1=${await hmacHex(opts.key ?? secret, `${ts}.${body}`)}`;
  return new Request("https://hooks.example.com/edgemq", {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-edgemq-timestamp": String(ts),
      "x-edgemq-signature": signature,
    },
    body,
  });
}

describe("createPushHandler", () => {
  it("hands a verified message to the handler and answers 200", async () => {
    const seen: PushMessage[] = [];
    const handle = createPushHandler({
      signingSecret: secret,
      now,
      handler: (m) => void seen.push(m),
    });
    const res = await handle(await post(JSON.stringify(message)));
    expect(res.status).toBe(200);
    expect(seen).toEqual([message]);
  });

  it("refuses a wrong, stale or missing signature with 401 and never calls the handler", async () => {
    let called = 0;
    const handle = createPushHandler({ signingSecret: secret, now, handler: () => void called++ });
    const body = JSON.stringify(message);
    expect((await handle(await post(body, { key: "another-secret" }))).status).toBe(401);
    expect((await handle(await post(body, { ts: NOW - 6 * 60_000 }))).status).toBe(401);
    expect((await handle(await post(body, { signature: "v1=00" }))).status).toBe(401);
    const tampered = await post(body);
    const forged = new Request(tampered.url, {
      method: "POST",
      headers: tampered.headers,
      body: body.replace("hello", "HELLO"),
    });
    expect((await handle(forged)).status).toBe(401);
    expect(called).toBe(0);
  });

  it("accepts either secret while a rotation overlaps", async () => {
    const handle = createPushHandler({
      signingSecret: ["new-secret-0123456789", secret],
      now,
      handler: () => {},
    });
    expect((await handle(await post(JSON.stringify(message)))).status).toBe(200);
  });

  it("answers 500 when the handler throws (the broker retries), and passes its own Response", async () => {
    const errors: unknown[] = [];
    const failing = createPushHandler({
      signingSecret: secret,
      now,
      handler: () => {
        throw new Error("db down");
      },
      onError: (e) => errors.push(e),
    });
    expect((await failing(await post(JSON.stringify(message)))).status).toBe(500);
    expect(errors).toHaveLength(1);
    const busy = createPushHandler({
      signingSecret: secret,
      now,
      handler: () => new Response(null, { status: 429, headers: { "retry-after": "30" } }),
    });
    const res = await busy(await post(JSON.stringify(message)));
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("30");
  });

  it("answers 400 to a signed body that is not a message, and 405 to a GET", async () => {
    const handle = createPushHandler({ signingSecret: secret, now, handler: () => {} });
    expect((await handle(await post(JSON.stringify({ hello: 1 })))).status).toBe(400);
    expect((await handle(new Request("https://x/", { method: "GET" }))).status).toBe(405);
  });
});
