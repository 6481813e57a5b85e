/**
 * Issue 16, item 4: a scoped token names the producer groups it may use
 * (`producerGroups`, trailing-`*` patterns like `groups`). Prepare, commit,
 * rollback and the transaction's state check it; the admin token and
 * Service Bindings may use any. Otherwise a publisher could make the broker
 * send validly signed, attacker-written check-backs to another producer
 * group's URL.
 */
import { describe, expect, it } from "vitest";
import { api, createTopic, unique } from "./helpers.ts";
import { bearer, claims, expectError, forge, mint } from "./token-helpers.ts";

const prepare = (topic: string, producerGroup: string, h?: Record<string, string>) =>
  api("POST", `/v1/topics/${topic}/transactions`, { message: { body: "x" }, producerGroup }, h);

async function openTransactions(topic: string): Promise<string[]> {
  const r = await api("GET", `/v1/topics/${topic}/transactions`);
  return r.body.transactions.map((t: { producerGroup: string }) => t.producerGroup);
}

describe("the producerGroups claim", () => {
  it("is required to open a transaction: a publish token without it opens none", async () => {
    const topic = await createTopic({ queues: 1 });
    const h = bearer(await mint({ publish: [topic] }));
    expectError(await prepare(topic, "billing", h), 403, "FORBIDDEN");
    expect(await openTransactions(topic)).toEqual([]);
  });

  it("lets a token open transactions for the producer groups it names, and no others", async () => {
    const topic = await createTopic({ queues: 1 });
    const mine = unique("web");
    const h = bearer(await mint({ publish: [topic], producerGroups: ["web-*"] }));
    expect((await prepare(topic, mine, h)).status).toBe(200);
    for (const pg of ["billing", "webx", "web"]) {
      expectError(await prepare(topic, pg, h), 403, "FORBIDDEN");
    }
    expect(await openTransactions(topic)).toEqual([mine]);
    // The name is checked before the scope: a malformed one is INVALID_NAME for everyone.
    expectError(await prepare(topic, "web-../x", h), 400, "INVALID_NAME");
  });

  it("guards commit, rollback and state of another producer group's transaction", async () => {
    // One sender, two tokens: the second no longer names the producer group it opened with.
    const topic = await createTopic({ queues: 1 });
    const sub = unique("web-app");
    const billing = unique("billing");
    const wide = bearer(await mint({ sub, publish: [topic], producerGroups: ["web-*", billing] }));
    const narrow = bearer(await mint({ sub, publish: [topic], producerGroups: ["web-*"] }));
    const theirs = await prepare(topic, billing, wide);
    expect(theirs.status).toBe(200);
    const txId = encodeURIComponent(theirs.body.txId);
    for (const [method, path] of [
      ["POST", `/v1/transactions/${txId}/rollback`],
      ["POST", `/v1/transactions/${txId}/commit`],
      ["GET", `/v1/transactions/${txId}`],
    ] as const) {
      expectError(await api(method, path, undefined, narrow), 403, "FORBIDDEN");
    }
    // Untouched: the token that names the group still ends it.
    expect((await api("GET", `/v1/transactions/${txId}`)).body.status).toBe("open");
    expect((await api("POST", `/v1/transactions/${txId}/commit`, undefined, wide)).body).toEqual({
      status: "committed",
    });
  });

  it("answers another sender's transaction as not found, whatever the token names", async () => {
    // The sender check comes first (item 2): no 403 tells anyone which group a txId belongs to.
    const topic = await createTopic({ queues: 1 });
    const admins = await prepare(topic, unique("billing"));
    const h = bearer(await mint({ publish: [topic], producerGroups: ["web-*"] }));
    const txId = encodeURIComponent(admins.body.txId);
    expectError(
      await api("POST", `/v1/transactions/${txId}/rollback`, undefined, h),
      404,
      "TRANSACTION_NOT_FOUND",
    );
    expect((await api("GET", `/v1/transactions/${txId}`)).body.status).toBe("open");
  });

  it("lets a token end and read its own producer group's transactions", async () => {
    const topic = await createTopic({ queues: 1 });
    const h = bearer(await mint({ publish: [topic], producerGroups: ["web-*"] }));
    const tx = await prepare(topic, unique("web"), h);
    const txId = encodeURIComponent(tx.body.txId);
    expect((await api("GET", `/v1/transactions/${txId}`, undefined, h)).body.status).toBe("open");
    expect((await api("POST", `/v1/transactions/${txId}/rollback`, undefined, h)).body).toEqual({
      status: "rolledBack",
    });
  });

  it("leaves the admin token free to use any producer group", async () => {
    const topic = await createTopic({ queues: 1 });
    expect((await prepare(topic, unique("any"))).status).toBe(200);
  });

  it("is minted as a list of patterns and refused in any other shape", async () => {
    const bad = await api("POST", "/v1/tokens", { sub: "x", producerGroups: "web-*" });
    expectError(bad, 400, "BAD_REQUEST");
    const slash = await api("POST", "/v1/tokens", { sub: "x", producerGroups: ["web/*"] });
    expectError(slash, 400, "BAD_REQUEST");
    const topic = await createTopic({ queues: 1 });
    const forged = await forge({ alg: "HS256", typ: "JWT" }, claims({ producerGroups: "web-*" }));
    expectError(await prepare(topic, "web-1", bearer(forged)), 401, "UNAUTHORIZED");
  });
});
