import { describe, expect, it } from "vitest";
import { createCheckHandler, type TransactionCheck } from "../../client/transaction.ts";

const secret = "test-secret";
const check: TransactionCheck = {
  txId: "tx-1",
  msgId: "m-1",
  topic: "orders",
  message: { body: "x" },
  checkTimes: 0,
};

async function sign(body: string, key = secret): Promise<string> {
  const k = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(key),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", k, new TextEncoder().encode(body)));
  return Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join("");
}

function post(body: string, signature?: string): Request {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (signature !== undefined) headers["x-edgemq-signature"] = signature;
  return new Request("http://app.local/edgemq/check", { method: "POST", headers, body });
}

describe("createCheckHandler", () => {
  it("answers the local decision for a correctly signed check", async () => {
    const seen: TransactionCheck[] = [];
    const handler = createCheckHandler({
      secret,
      check: (c) => {
        seen.push(c);
        return "commit";
      },
    });
    const body = JSON.stringify(check);
    const response = await handler(post(body, await sign(body)));
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: "commit" });
    expect(seen).toEqual([check]);
  });

  it("accepts an upper-case hex signature", async () => {
    const handler = createCheckHandler({ secret, check: () => "rollback" });
    const body = JSON.stringify(check);
    const response = await handler(post(body, (await sign(body)).toUpperCase()));
    expect(await response.json()).toEqual({ status: "rollback" });
  });

  it("refuses a body signed with another secret, without asking the application", async () => {
    let asked = false;
    const handler = createCheckHandler({
      secret,
      check: () => {
        asked = true;
        return "commit";
      },
    });
    const body = JSON.stringify(check);
    const response = await handler(post(body, await sign(body, "attacker-secret")));
    expect(response.status).toBe(401);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe(
      "UNAUTHORIZED",
    );
    expect(asked).toBe(false);
  });

  it("refuses a body altered after signing", async () => {
    const handler = createCheckHandler({ secret, check: () => "commit" });
    const body = JSON.stringify(check);
    const signature = await sign(body);
    const tampered = body.replace("tx-1", "tx-2");
    expect((await handler(post(tampered, signature))).status).toBe(401);
  });

  it("refuses a request without a signature", async () => {
    const handler = createCheckHandler({ secret, check: () => "commit" });
    expect((await handler(post(JSON.stringify(check)))).status).toBe(401);
  });

  it("refuses a signature that is not 32 bytes of hex", async () => {
    const handler = createCheckHandler({ secret, check: () => "commit" });
    const body = JSON.stringify(check);
    expect((await handler(post(body, "zz"))).status).toBe(401);
    expect((await handler(post(body, (await sign(body)).slice(0, 62)))).status).toBe(401);
  });

  it("answers unknown when the application's check throws, so the broker asks again later", async () => {
    const handler = createCheckHandler({
      secret,
      check: () => {
        throw new Error("db unreachable");
      },
    });
    const body = JSON.stringify(check);
    expect(await (await handler(post(body, await sign(body)))).json()).toEqual({
      status: "unknown",
    });
  });

  it("refuses methods other than POST", async () => {
    const handler = createCheckHandler({ secret, check: () => "commit" });
    const response = await handler(new Request("http://app.local/edgemq/check"));
    expect(response.status).toBe(405);
  });
});
