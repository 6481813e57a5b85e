/**
 * The SDK's check-back handler verifies the broker's per-receiver signature
 * (X-Edgemq-Timestamp + X-Edgemq-Signature: v1=…) before it asks the
 * application anything. Requests are signed here by the test's own HMAC, as
 * the scheme is written in api.md, not with the SDK's code.
 */
import { describe, expect, it } from "vitest";
import { createCheckHandler, type TransactionCheck } from "../../client/transaction.ts";

const secret = "pg-signing-secret-0123456789abcdefghijklmnopq";
const NOW = 1_764_000_000_000;
const now = () => NOW;
const check: TransactionCheck = {
  txId: "tx-1",
  msgId: "m-1",
  topic: "orders",
  producerGroup: "pg",
  message: { body: "x" },
  checkTimes: 1,
};

/** HMAC-SHA256 in hex, written here with WebCrypto (not the module under test). */
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

async function v1(body: string, key = secret, ts = NOW): Promise<string> {
  return `v1=${await hmacHex(key, `${ts}.${body}`)}`;
}

function post(body: string, signature?: string, timestamp: number | string = NOW): Request {
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "x-edgemq-timestamp": String(timestamp),
  };
  if (signature !== undefined) headers["x-edgemq-signature"] = signature;
  return new Request("http://app.local/edgemq/check", { method: "POST", headers, body });
}

async function errorOf(response: Response): Promise<{ code: string; message: string }> {
  return ((await response.json()) as { error: { code: string; message: string } }).error;
}

describe("createCheckHandler", () => {
  it("answers the local decision for a correctly signed check", async () => {
    const seen: TransactionCheck[] = [];
    const handler = createCheckHandler({
      secret,
      now,
      check: (c) => {
        seen.push(c);
        return "commit";
      },
    });
    const body = JSON.stringify(check);
    const response = await handler(post(body, await v1(body)));
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: "commit" });
    expect(seen).toEqual([check]);
  });

  it("accepts either signature while the broker overlaps a rotation, and either own secret", async () => {
    const body = JSON.stringify(check);
    const both = `${await v1(body, "new-secret")},${await v1(body, "old-secret")}`;
    for (const mine of ["old-secret", "new-secret", ["new-secret", "old-secret"]]) {
      const handler = createCheckHandler({ secret: mine, now, check: () => "rollback" });
      expect(await (await handler(post(body, both))).json()).toEqual({ status: "rollback" });
    }
  });

  it("refuses a body signed with another receiver's secret, without asking the application", async () => {
    let asked = false;
    const handler = createCheckHandler({
      secret,
      now,
      check: () => {
        asked = true;
        return "commit";
      },
    });
    const body = JSON.stringify(check);
    const response = await handler(post(body, await v1(body, "another-producer-groups-secret")));
    expect(response.status).toBe(401);
    expect((await errorOf(response)).code).toBe("UNAUTHORIZED");
    expect(asked).toBe(false);
  });

  it("refuses a captured check replayed more than 5 minutes later, or dated ahead", async () => {
    const body = JSON.stringify(check);
    const old = NOW - 5 * 60_000 - 1;
    const handler = createCheckHandler({ secret, now, check: () => "commit" });
    const replayed = await handler(post(body, await v1(body, secret, old), old));
    expect(replayed.status).toBe(401);
    expect((await errorOf(replayed)).message).toMatch(/timestamp/i);
    const ahead = NOW + 5 * 60_000 + 1;
    expect((await handler(post(body, await v1(body, secret, ahead), ahead))).status).toBe(401);
    // Within the window it is accepted: the broker's clock may be a little off.
    const late = NOW - 60_000;
    expect((await handler(post(body, await v1(body, secret, late), late))).status).toBe(200);
  });

  it("refuses a timestamp changed after signing (the timestamp is inside the MAC)", async () => {
    const handler = createCheckHandler({ secret, now, check: () => "commit" });
    const body = JSON.stringify(check);
    expect((await handler(post(body, await v1(body, secret, NOW - 1000), NOW))).status).toBe(401);
  });

  it("refuses the old scheme: a bare hex HMAC of the body", async () => {
    const handler = createCheckHandler({ secret, now, check: () => "commit" });
    const body = JSON.stringify(check);
    const bare = await hmacHex(secret, body);
    expect((await handler(post(body, bare))).status).toBe(401);
  });

  it("refuses a body altered after signing", async () => {
    const handler = createCheckHandler({ secret, now, check: () => "commit" });
    const body = JSON.stringify(check);
    const tampered = body.replace("tx-1", "tx-2");
    expect((await handler(post(tampered, await v1(body)))).status).toBe(401);
  });

  it("refuses a request without a signature or a timestamp", async () => {
    const handler = createCheckHandler({ secret, now, check: () => "commit" });
    const body = JSON.stringify(check);
    expect((await handler(post(body))).status).toBe(401);
    const noTimestamp = new Request("http://app.local/", {
      method: "POST",
      headers: { "x-edgemq-signature": await v1(body) },
      body,
    });
    expect((await handler(noTimestamp)).status).toBe(401);
  });

  it("refuses a signature that is not 32 bytes of hex", async () => {
    const handler = createCheckHandler({ secret, now, check: () => "commit" });
    const body = JSON.stringify(check);
    expect((await handler(post(body, "v1=zz"))).status).toBe(401);
    expect((await handler(post(body, (await v1(body)).slice(0, 65)))).status).toBe(401);
  });

  it("answers unknown when the application's check throws, so the broker asks again later", async () => {
    const handler = createCheckHandler({
      secret,
      now,
      check: () => {
        throw new Error("db unreachable");
      },
    });
    const body = JSON.stringify(check);
    expect(await (await handler(post(body, await v1(body)))).json()).toEqual({ status: "unknown" });
  });

  it("refuses methods other than POST", async () => {
    const handler = createCheckHandler({ secret, check: () => "commit" });
    const response = await handler(new Request("http://app.local/edgemq/check"));
    expect(response.status).toBe(405);
  });

  it("refuses to be made without a secret", () => {
    expect(() => createCheckHandler({ secret: "", check: () => "commit" })).toThrow(TypeError);
    expect(() => createCheckHandler({ secret: [], check: () => "commit" })).toThrow(TypeError);
  });
});
