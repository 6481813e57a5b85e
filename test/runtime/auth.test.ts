import { sign } from "hono/jwt";
import { describe, expect, it } from "vitest";
import { api, createTopic, unique } from "./helpers.ts";
import { bearer, callWithEnv, claims, expectError, forge, mint, SECRET } from "./token-helpers.ts";

const send = (topic: string, headers: Record<string, string>, body = "hi") =>
  api("POST", `/v1/topics/${topic}/messages`, { messages: [{ body }] }, headers);

async function storedMessages(topic: string): Promise<number> {
  const r = await api("GET", `/v1/topics/${topic}`);
  return (r.body.queueStats as { messages: number }[]).reduce((n, q) => n + q.messages, 0);
}

describe("admin token", () => {
  it("grants every permission", async () => {
    const topic = await createTopic({ queues: 1 });
    expect((await send(topic, bearer("test-admin"))).status).toBe(200);
    expect((await api("GET", "/v1/topics", undefined, bearer("test-admin"))).status).toBe(200);
  });

  it("accepts the scheme in any case", async () => {
    const r = await api("GET", "/v1/topics", undefined, { authorization: "bearer test-admin" });
    expect(r.status).toBe(200);
  });

  it.each([
    ["no Authorization header", {}],
    ["an empty bearer", { authorization: "Bearer " }],
    ["another scheme", { authorization: "Basic dGVzdC1hZG1pbg==" }],
    ["the admin token with a suffix", { authorization: "Bearer test-admin2" }],
    ["a prefix of the admin token", { authorization: "Bearer test-admi" }],
    ["garbage", { authorization: "Bearer !!!not-a-token!!!" }],
    ["two tokens", { authorization: "Bearer test-admin test-admin" }],
    ["a token with three empty parts", { authorization: "Bearer .." }],
  ])("refuses %s with 401", async (_, headers) => {
    expectError(
      await api("GET", "/v1/topics", undefined, headers as Record<string, string>),
      401,
      "UNAUTHORIZED",
    );
  });
});

describe("scoped tokens are verified (RFC 8725)", () => {
  it("accepts a minted token within its scope", async () => {
    const topic = await createTopic({ queues: 1 });
    const token = await mint({ publish: [topic] });
    expect((await send(topic, bearer(token))).status).toBe(200);
  });

  const hs256 = { alg: "HS256", typ: "JWT" };
  const now = () => Math.floor(Date.now() / 1000);
  const cases: [string, () => Promise<string>][] = [
    ["signed with another secret", () => forge(hs256, claims(), "not-the-secret")],
    [
      "with a tampered payload",
      async () => {
        const [h, , s] = (await forge(hs256, claims({ publish: [] }))).split(".");
        const p = btoa(JSON.stringify(claims()))
          .replace(/=+$/, "")
          .replace(/\+/g, "-")
          .replace(/\//g, "_");
        return `${h}.${p}.${s}`;
      },
    ],
    [
      "with its signature cut off",
      async () => (await forge(hs256, claims())).split(".").slice(0, 2).join(".") + ".",
    ],
    ["with alg none", () => forge({ alg: "none", typ: "JWT" }, claims())],
    ["with alg None", () => forge({ alg: "None", typ: "JWT" }, claims())],
    [
      "with alg HS512, even signed with the secret",
      () => forge({ alg: "HS512", typ: "JWT" }, claims(), SECRET, "SHA-512"),
    ],
    ["with alg HS512 from hono's own signer", () => sign(claims(), SECRET, "HS512")],
    ["with alg RS256", () => forge({ alg: "RS256", typ: "JWT" }, claims())],
    ["without typ", () => forge({ alg: "HS256" }, claims())],
    ["with another typ", () => forge({ alg: "HS256", typ: "at+jwt" }, claims())],
    ["with a kid", () => forge({ ...hs256, kid: "k1" }, claims())],
    ["with a jku URL", () => forge({ ...hs256, jku: "https://evil.example/jwks" }, claims())],
    ["with an embedded jwk", () => forge({ ...hs256, jwk: { kty: "oct", k: "AAAA" } }, claims())],
    ["with crit", () => forge({ ...hs256, crit: ["exp"] }, claims())],
    ["expired", () => forge(hs256, claims({ exp: now() - 5 }))],
    ["without exp", () => forge(hs256, claims({ exp: undefined }))],
    ["with a string exp", () => forge(hs256, claims({ exp: String(now() + 60) }))],
    [
      "living longer than the minting limit",
      () => forge(hs256, claims({ exp: now() + 30 * 24 * 3600 })),
    ],
    ["without aud", () => forge(hs256, claims({ aud: undefined }))],
    ["for another audience", () => forge(hs256, claims({ aud: "other-service" }))],
    ["not valid yet (nbf)", () => forge(hs256, claims({ nbf: now() + 600 }))],
    ["issued in the future", () => forge(hs256, claims({ iat: now() + 600 }))],
    ["without sub", () => forge(hs256, claims({ sub: undefined }))],
    ["with malformed scope claims", () => forge(hs256, claims({ publish: "orders*" }))],
    ["with a scope pattern holding a slash", () => forge(hs256, claims({ publish: ["orders/*"] }))],
  ];
  it.each(cases)("refuses a token %s with 401", async (_, make) => {
    const topic = await createTopic({ queues: 1 });
    const r = await send(topic, bearer(await make()));
    expectError(r, 401, "UNAUTHORIZED");
    expect(await storedMessages(topic)).toBe(0);
  });

  it("accepts a token expired less than the 1 s leeway ago", async () => {
    const topic = await createTopic({ queues: 1 });
    const token = await forge(
      { alg: "HS256", typ: "JWT" },
      claims({ exp: Date.now() / 1000 - 0.5 }),
    );
    expect((await send(topic, bearer(token))).status).toBe(200);
  });

  it("refuses a token that is too large before verifying it", async () => {
    const r = await api("GET", "/v1/topics", undefined, bearer("a".repeat(30_000)));
    expectError(r, 401, "UNAUTHORIZED");
  });

  it("refuses tokens in the URL with 400, even alongside a valid header", async () => {
    const token = await mint({ publish: ["*"] });
    for (const q of ["token", "access_token"]) {
      const r = await api("GET", `/v1/topics?${q}=${token}`, undefined, bearer("test-admin"));
      expectError(r, 400, "BAD_REQUEST");
    }
    const topic = await createTopic({ queues: 1 });
    const r = await api(
      "POST",
      `/v1/topics/${topic}/messages?access_token=${token}`,
      { messages: [{ body: "x" }] },
      {},
    );
    expectError(r, 400, "BAD_REQUEST");
    expect(await storedMessages(topic)).toBe(0);
  });
});

describe("minting tokens", () => {
  it("mints an audience-bound HS256 JWT with exp", async () => {
    const r = await api("POST", "/v1/tokens", { sub: "web", publish: ["orders*"], ttlSeconds: 60 });
    expect(r.status).toBe(200);
    const [h, p] = (r.body.token as string)
      .split(".")
      .slice(0, 2)
      .map((x) => JSON.parse(atob(x!.replace(/-/g, "+").replace(/_/g, "/"))));
    expect(h).toEqual({ alg: "HS256", typ: "JWT" });
    expect(p).toMatchObject({
      sub: "web",
      aud: "edgemq",
      publish: ["orders*"],
      subscribe: [],
      groups: [],
    });
    expect(p.exp - p.iat).toBe(60);
    expect(r.body.exp).toBe(p.exp);
  });

  it.each([
    ["a ttl over the limit", { sub: "w", ttlSeconds: 24 * 3600 + 1 }],
    ["a zero ttl", { sub: "w", ttlSeconds: 0 }],
    ["a fractional ttl", { sub: "w", ttlSeconds: 1.5 }],
    ["no sub", { publish: ["a"] }],
    ["a sub with a lone surrogate", { sub: "web\ud800" }],
    ["a leading wildcard", { sub: "w", publish: ["*orders"] }],
    ["an inner wildcard", { sub: "w", publish: ["or*ders"] }],
    ["a slash in a pattern", { sub: "w", subscribe: ["orders/*"] }],
    ["dots in a pattern", { sub: "w", groups: ["../*"] }],
    ["a pattern that is not a string", { sub: "w", publish: [7] }],
    ["a scope that is not a list", { sub: "w", publish: "orders*" }],
    ["too many patterns", { sub: "w", publish: Array.from({ length: 33 }, (_, i) => `t${i}`) }],
    ["an unknown field", { sub: "w", admin: true }],
  ])("refuses %s with 400", async (_, body) => {
    expectError(await api("POST", "/v1/tokens", body), 400, "BAD_REQUEST");
  });

  it("mints a token with full pattern lists that still fits the header limit", async () => {
    const long = (p: string) =>
      Array.from({ length: 32 }, (_, i) => `${p}${i}`.padEnd(126, "x") + "*");
    const token = await mint({
      sub: "s".repeat(256),
      publish: long("p"),
      subscribe: long("s"),
      groups: long("g"),
    });
    expect(
      (await api("GET", `/v1/topics/p0${"x".repeat(124)}/route`, undefined, bearer(token))).status,
    ).toBe(404);
  });

  it("is admin only", async () => {
    const token = await mint({ publish: ["*"], subscribe: ["*"], groups: ["*"] });
    expectError(
      await api("POST", "/v1/tokens", { sub: "x", publish: ["*"] }, bearer(token)),
      403,
      "FORBIDDEN",
    );
  });
});

describe("scopes", () => {
  it("lets a publish token send and run transactions on its topics only", async () => {
    const mine = await createTopic({ queues: 1 }, "orders");
    const other = await createTopic({ queues: 1 }, "payments");
    const h = bearer(await mint({ publish: ["orders*"], producerGroups: ["pg"] }));
    expect((await send(mine, h)).status).toBe(200);
    expectError(await send(other, h), 403, "FORBIDDEN");
    const tx = await api(
      "POST",
      `/v1/topics/${mine}/transactions`,
      { message: { body: "x" }, producerGroup: "pg" },
      h,
    );
    expect(tx.status).toBe(200);
    expect(
      (await api("POST", `/v1/transactions/${tx.body.txId}/commit`, undefined, h)).body,
    ).toEqual({ status: "committed" });
    expectError(
      await api(
        "POST",
        `/v1/topics/${other}/transactions`,
        { message: { body: "x" }, producerGroup: "pg" },
        h,
      ),
      403,
      "FORBIDDEN",
    );
    expect(await storedMessages(other)).toBe(0);
  });

  it("does not let a publish token consume or administer", async () => {
    const topic = await createTopic({ queues: 1 }, "orders");
    const g = unique("g");
    const h = bearer(await mint({ publish: [topic], groups: ["*"] }));
    const denied: [string, string, unknown?][] = [
      ["GET", `/v1/topics/${topic}/queues/0/messages?offset=0`],
      ["POST", `/v1/groups/${g}/topics/${topic}/receive`, {}],
      ["POST", `/v1/groups/${g}/topics/${topic}/ack`, { receipts: ["r1.x.y.0.0.h"] }],
      ["GET", `/v1/groups/${g}/topics/${topic}/offsets`],
      ["PUT", `/v1/groups/${g}/topics/${topic}/queues/0/offset`, { offset: 0 }],
      ["POST", `/v1/groups/${g}/heartbeat`, { clientId: "c", topics: [topic] }],
    ];
    for (const [m, p, b] of denied) expectError(await api(m, p, b, h), 403, "FORBIDDEN");
  });

  it("lets a subscribe token consume its topics as its groups only", async () => {
    const topic = await createTopic({ queues: 1 }, "orders");
    const other = await createTopic({ queues: 1 }, "payments");
    await send(topic, bearer("test-admin"), "one");
    await send(topic, bearer("test-admin"), "two");
    await send(topic, bearer("test-admin"), "three");
    const g = unique("web");
    const bad = unique("ops");
    const h = bearer(await mint({ subscribe: ["orders*"], groups: ["web-*"] }));

    expect(
      (await api("GET", `/v1/topics/${topic}/queues/0/messages?offset=0`, undefined, h)).status,
    ).toBe(200);
    expect(
      (await api("GET", `/v1/topics/${topic}/queues/0/messages?group=${g}`, undefined, h)).status,
    ).toBe(200);
    expectError(
      await api("GET", `/v1/topics/${topic}/queues/0/messages?group=${bad}`, undefined, h),
      403,
      "FORBIDDEN",
    );
    expectError(
      await api("GET", `/v1/topics/${other}/queues/0/messages?offset=0`, undefined, h),
      403,
      "FORBIDDEN",
    );

    const rec = await api("POST", `/v1/groups/${g}/topics/${topic}/receive`, { max: 3 }, h);
    expect(rec.status).toBe(200);
    const [r1, r2, r3] = (rec.body.messages as { receipt: string }[]).map((m) => m.receipt);
    expect(
      (await api("POST", `/v1/groups/${g}/topics/${topic}/ack`, { receipts: [r1] }, h)).body
        .results[0].ok,
    ).toBe(true);
    expect(
      (await api("POST", `/v1/groups/${g}/topics/${topic}/nack`, { receipts: [r2] }, h)).body
        .results[0].ok,
    ).toBe(true);
    expect(
      (
        await api(
          "POST",
          `/v1/groups/${g}/topics/${topic}/invisibility`,
          { receipt: r3, invisibleMs: 5000 },
          h,
        )
      ).status,
    ).toBe(200);
    expect((await api("GET", `/v1/groups/${g}/topics/${topic}/offsets`, undefined, h)).status).toBe(
      200,
    );
    expect(
      (await api("PUT", `/v1/groups/${g}/topics/${topic}/queues/0/offset`, { offset: 1 }, h))
        .status,
    ).toBe(200);
    expect(
      (await api("POST", `/v1/groups/${g}/topics/${topic}/offsets/reset`, { to: "earliest" }, h))
        .status,
    ).toBe(200);
    expect(
      (await api("POST", `/v1/groups/${g}/heartbeat`, { clientId: "c", topics: [topic] }, h))
        .status,
    ).toBe(200);
    expect((await api("GET", `/v1/topics/${topic}/route`, undefined, h)).status).toBe(200);

    const asBad: [string, string, unknown?][] = [
      ["POST", `/v1/groups/${bad}/topics/${topic}/receive`, {}],
      ["POST", `/v1/groups/${bad}/topics/${topic}/ack`, { receipts: [r3] }],
      ["POST", `/v1/groups/${bad}/topics/${topic}/nack`, { receipts: [r3] }],
      [
        "POST",
        `/v1/groups/${bad}/topics/${topic}/invisibility`,
        { receipt: r3, invisibleMs: 5000 },
      ],
      ["GET", `/v1/groups/${bad}/topics/${topic}/offsets`],
      ["PUT", `/v1/groups/${bad}/topics/${topic}/queues/0/offset`, { offset: 0 }],
      ["POST", `/v1/groups/${bad}/topics/${topic}/offsets/reset`, { to: "latest" }],
      ["POST", `/v1/groups/${bad}/heartbeat`, { clientId: "c", topics: [topic] }],
      ["POST", `/v1/groups/${bad}/heartbeat`, { clientId: "c", topics: [] }],
      ["POST", `/v1/groups/${g}/heartbeat`, { clientId: "c", topics: [topic, other] }],
      ["POST", `/v1/groups/${g}/topics/${other}/receive`, {}],
      ["GET", `/v1/topics/${other}/route`],
      ["POST", `/v1/topics/${topic}/messages`, { messages: [{ body: "x" }] }],
      ["POST", `/v1/topics/${topic}/transactions`, { message: { body: "x" }, producerGroup: "pg" }],
    ];
    for (const [m, p, b] of asBad) expectError(await api(m, p, b, h), 403, "FORBIDDEN");
  });

  it("keeps every admin route admin-only for a token with every scope", async () => {
    const topic = await createTopic({ queues: 1 });
    const g = unique("g");
    const h = bearer(await mint({ publish: ["*"], subscribe: ["*"], groups: ["*"] }));
    const adminOnly: [string, string, unknown?][] = [
      ["PUT", `/v1/topics/${unique("new")}`, {}],
      ["GET", "/v1/topics"],
      ["GET", `/v1/topics/${topic}`],
      ["DELETE", `/v1/topics/${topic}`],
      ["POST", `/v1/topics/${topic}/purge`],
      ["GET", `/v1/topics/${topic}/messages?key=k`],
      ["GET", `/v1/topics/${topic}/messages/some-id`],
      ["GET", `/v1/topics/${topic}/transactions`],
      ["PUT", `/v1/groups/${g}`, {}],
      ["GET", "/v1/groups"],
      ["GET", `/v1/groups/${g}`],
      ["DELETE", `/v1/groups/${g}`],
      ["GET", `/v1/groups/${g}/dlq/messages`],
      ["POST", `/v1/groups/${g}/dlq/resend`, {}],
      ["PUT", "/v1/producer-groups/pg", { checkUrl: "https://example.com/check" }],
      ["GET", "/v1/producer-groups/pg"],
      ["GET", "/v1/producer-groups"],
      ["POST", "/v1/tokens", { sub: "x" }],
    ];
    for (const [m, p, b] of adminOnly) {
      const r = await api(m, p, b, h);
      expect({ route: `${m} ${p}`, status: r.status }).toEqual({ route: `${m} ${p}`, status: 403 });
      expectError(r, 403, "FORBIDDEN");
    }
    expect((await api("GET", `/v1/topics/${topic}`)).status).toBe(200);
  });
});

describe("pattern tricks do not widen a scope", () => {
  it("keeps orders* away from payments however the path is spelled", async () => {
    const orders = await createTopic({ queues: 1 }, "orders");
    const payments = await createTopic({ queues: 1 }, "payments");
    const h = bearer(
      await mint({ publish: ["orders*"], subscribe: ["orders*"], groups: ["web-*"] }),
    );
    const body = { messages: [{ body: "evil" }] };
    const F = [403, "FORBIDDEN"] as const;
    const N = [400, "INVALID_NAME"] as const;
    const paths: [string, readonly [number, string]][] = [
      [`/v1/topics/${payments}/messages`, F],
      // The URL parser resolves dot segments before routing: the scope check sees payments.
      [`/v1/topics/${orders}/../${payments}/messages`, F],
      [`/v1/topics/${orders}/%2e%2e/${payments}/messages`, F],
      // An encoded slash stays inside one segment, which is then not a name.
      [`/v1/topics/${orders}%2F..%2F${payments}/messages`, N],
      [`/v1/topics/${orders}%2f..%2f${payments}/messages`, N],
      [`/v1/topics/${orders}%252F..%252F${payments}/messages`, N],
      [`/v1/topics/orders%2A/messages`, N],
      [`/v1/topics/orders*/messages`, N],
      [`/v1/topics/${orders}%00${payments}/messages`, N],
      [`/v1/topics/${orders}.${payments}/messages`, N],
      [`/v1/topics/${payments}%23${orders}/messages`, N],
      [`/v1/topics/${payments}?x=/${orders}/messages`, [404, "NOT_FOUND"]],
      [`/v1/topics//${payments}/messages`, [404, "NOT_FOUND"]],
      [`/v1/topics/${payments.toUpperCase()}/messages`, F],
    ];
    for (const [p, [status, code]] of paths) {
      const r = await api("POST", p, body, h);
      expect({ p, status: r.status, code: r.body.error?.code }).toEqual({ p, status, code });
    }
    expect(await storedMessages(payments)).toBe(0);
    expect(await storedMessages(orders)).toBe(0);
  });

  it("matches an exact pattern as the whole name, and group patterns likewise", async () => {
    const base = unique("orders");
    const longer = await createTopic({ queues: 1 }, base);
    const h = bearer(await mint({ publish: [base], subscribe: [base], groups: ["web"] }));
    expectError(await send(longer, h), 403, "FORBIDDEN");
    expectError(
      await api("POST", `/v1/groups/web-x/topics/${base}/receive`, {}, h),
      403,
      "FORBIDDEN",
    );
    expectError(
      await api("POST", `/v1/groups/webx/topics/${base}/receive`, {}, h),
      403,
      "FORBIDDEN",
    );
  });

  it("does not let a receipt of another topic be used through an allowed path", async () => {
    const orders = await createTopic({ queues: 1 }, "orders");
    const payments = await createTopic({ queues: 1 }, "payments");
    const g = unique("web");
    await send(payments, bearer("test-admin"), "secret");
    const theirs = await api("POST", `/v1/groups/${g}/topics/${payments}/receive`, {
      max: 1,
      invisibleMs: 60_000,
    });
    const receipt = theirs.body.messages[0].receipt as string;
    const msgId = theirs.body.messages[0].msgId as string;
    const h = bearer(await mint({ subscribe: ["orders*"], groups: ["web-*"] }));

    expectError(
      await api("POST", `/v1/groups/${g}/topics/${orders}/ack`, { receipts: [receipt] }, h),
      400,
      "BAD_REQUEST",
    );
    expectError(
      await api("POST", `/v1/groups/${g}/topics/${orders}/nack`, { receipts: [receipt] }, h),
      400,
      "BAD_REQUEST",
    );
    expectError(
      await api(
        "POST",
        `/v1/groups/${g}/topics/${orders}/invisibility`,
        { receipt, invisibleMs: 1000 },
        h,
      ),
      400,
      "BAD_REQUEST",
    );
    expectError(
      await api("POST", `/v1/groups/${g}/topics/${payments}/ack`, { receipts: [receipt] }, h),
      403,
      "FORBIDDEN",
    );
    // The same receipt relabelled with the allowed topic reaches that topic's shard only.
    const relabelled = receipt.replace(`r1.${payments}.`, `r1.${orders}.`);
    const r = await api(
      "POST",
      `/v1/groups/${g}/topics/${orders}/ack`,
      { receipts: [relabelled] },
      h,
    );
    expect(r.status === 200 ? r.body.results[0].ok : false).not.toBe(true);

    const found = await api("GET", `/v1/topics/${payments}/messages/${msgId}`);
    expect(found.body.groups[g]).toBe("inflight");
  });

  it("does not let a txId of another topic be committed or rolled back", async () => {
    const orders = await createTopic({ queues: 1 }, "orders");
    const payments = await createTopic({ queues: 1 }, "payments");
    const tx = await api("POST", `/v1/topics/${payments}/transactions`, {
      message: { body: "x" },
      producerGroup: "pg",
    });
    const h = bearer(await mint({ publish: ["orders*"] }));
    for (const end of ["commit", "rollback"]) {
      expectError(
        await api("POST", `/v1/transactions/${tx.body.txId}/${end}`, undefined, h),
        403,
        "FORBIDDEN",
      );
      const relabelled = (tx.body.txId as string).replace(`.${payments}.`, `.${orders}.`);
      expect(relabelled).not.toBe(tx.body.txId);
      const r = await api("POST", `/v1/transactions/${relabelled}/${end}`, undefined, h);
      expect(r.status).toBe(404);
    }
    expectError(
      await api(
        "POST",
        `/v1/transactions/t1.${payments}%2F..%2F${orders}.0.1/commit`,
        undefined,
        h,
      ),
      404,
      "TRANSACTION_NOT_FOUND",
    );
    expect(await storedMessages(payments)).toBe(0);
    const open = await api("GET", `/v1/topics/${payments}/transactions`);
    expect(open.body.transactions.map((t: { txId: string }) => t.txId)).toEqual([tx.body.txId]);
  });
});

describe("deployed without secrets", () => {
  const unconfigured = { ADMIN_TOKEN: undefined, TOKEN_SECRET: undefined, EDGEMQ_LOCAL: undefined };
  const routes: [string, string][] = [
    ["GET", "/v1/topics"],
    ["PUT", "/v1/topics/t"],
    ["GET", "/v1/topics/t"],
    ["DELETE", "/v1/topics/t"],
    ["POST", "/v1/topics/t/messages"],
    ["GET", "/v1/topics/t/queues/0/messages?offset=0"],
    ["POST", "/v1/groups/g/topics/t/receive"],
    ["POST", "/v1/groups/g/topics/t/ack"],
    ["POST", "/v1/transactions/t1.t.0.1/commit"],
    ["POST", "/v1/tokens"],
    ["GET", "/v1/groups/g"],
    ["GET", "/v1/nowhere"],
  ];

  it.each(routes)("answers %s %s with 503 NOT_CONFIGURED", async (method, path) => {
    const res = await callWithEnv(unconfigured, method, path, {
      headers: { authorization: "Bearer test-admin" },
    });
    expectError({ status: res.status, body: await res.json() }, 503, "NOT_CONFIGURED");
  });

  it("still answers health", async () => {
    const res = await callWithEnv(unconfigured, "GET", "/v1/health");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
  });

  it("runs open under npm start (EDGEMQ_LOCAL=1)", async () => {
    const res = await callWithEnv({ ...unconfigured, EDGEMQ_LOCAL: "1" }, "GET", "/v1/topics", {
      base: "http://127.0.0.1:8787",
    });
    expect(res.status).toBe(200);
  });

  it("with only TOKEN_SECRET, takes scoped tokens and refuses everything else", async () => {
    const token = await mint({ publish: ["*"] });
    const topic = await createTopic({ queues: 1 });
    const only = { ADMIN_TOKEN: undefined, EDGEMQ_LOCAL: undefined };
    const ok = await callWithEnv(only, "POST", `/v1/topics/${topic}/messages`, {
      headers: bearer(token),
      body: JSON.stringify({ messages: [{ body: "x" }] }),
    });
    expect(ok.status).toBe(200);
    const admin = await callWithEnv(only, "GET", "/v1/topics", { headers: bearer("test-admin") });
    expect(admin.status).toBe(401);
  });

  it("with only ADMIN_TOKEN, refuses scoped tokens", async () => {
    const token = await mint({ publish: ["*"] });
    const only = { TOKEN_SECRET: undefined, EDGEMQ_LOCAL: undefined };
    const res = await callWithEnv(only, "GET", "/v1/topics/t/route", { headers: bearer(token) });
    expect(res.status).toBe(401);
    const mintRes = await callWithEnv(only, "POST", "/v1/tokens", {
      headers: bearer("test-admin"),
      body: '{"sub":"x"}',
    });
    expectError({ status: mintRes.status, body: await mintRes.json() }, 503, "NOT_CONFIGURED");
  });
});

describe("rate limiting", () => {
  const local = (perMinute: string) => ({
    RATE_LIMITER: undefined,
    RATE_LIMIT_PER_MINUTE: perMinute,
  });

  it("answers 429 RATE_LIMITED with Retry-After once a token's subject is over its rate", async () => {
    const topic = await createTopic({ queues: 1 });
    const sub = unique("sub");
    const h = bearer(await mint({ sub, publish: [topic] }));
    const statuses: number[] = [];
    let last: Response | undefined;
    for (let i = 0; i < 4; i++) {
      last = await callWithEnv(local("3"), "GET", `/v1/topics/${topic}/route`, { headers: h });
      statuses.push(last.status);
    }
    expect(statuses).toEqual([200, 200, 200, 429]);
    expectError({ status: last!.status, body: await last!.json() }, 429, "RATE_LIMITED");
    expect(Number(last!.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    // Another token of the same subject shares the bucket; another subject does not.
    const same = bearer(await mint({ sub, publish: [topic] }));
    expect(
      (await callWithEnv(local("3"), "GET", `/v1/topics/${topic}/route`, { headers: same })).status,
    ).toBe(429);
    const other = bearer(await mint({ sub: unique("sub"), publish: [topic] }));
    expect(
      (await callWithEnv(local("3"), "GET", `/v1/topics/${topic}/route`, { headers: other }))
        .status,
    ).toBe(200);
  });

  it("never limits the admin token, and is off by default", async () => {
    for (let i = 0; i < 5; i++) {
      expect(
        (await callWithEnv(local("2"), "GET", "/v1/topics", { headers: bearer("test-admin") }))
          .status,
      ).toBe(200);
    }
    const h = bearer(await mint({ sub: unique("sub"), publish: ["*"] }));
    for (let i = 0; i < 5; i++) {
      expect(
        (await callWithEnv(local("0"), "GET", "/v1/topics/none/route", { headers: h })).status,
      ).toBe(404);
    }
  });

  it("uses the Cloudflare rate limiting binding, keyed by subject, when bound", async () => {
    const keys: string[] = [];
    const binding = {
      limit: async ({ key }: { key: string }) => {
        keys.push(key);
        return { success: false };
      },
    };
    const sub = unique("sub");
    const h = bearer(await mint({ sub, publish: ["*"] }));
    const res = await callWithEnv(
      { RATE_LIMITER: binding, RATE_LIMIT_PER_MINUTE: "1000" },
      "GET",
      "/v1/topics/x/route",
      { headers: h },
    );
    expectError({ status: res.status, body: await res.json() }, 429, "RATE_LIMITED");
    expect(keys).toEqual([`sub:${sub}`]);
  });
});

describe("implicit group creation (issue 16, item 8: one rule, in code and docs)", () => {
  it("lets a token with the group in its scope create it with defaults by consuming, and no more", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("web");
    const h = bearer(await mint({ subscribe: [topic], groups: ["web-*"] }));
    expectError(await api("GET", `/v1/groups/${group}`), 404, "GROUP_NOT_FOUND");
    const r = await api("POST", `/v1/groups/${group}/topics/${topic}/receive`, {}, h);
    expect(r.status).toBe(200);
    const created = await api("GET", `/v1/groups/${group}`);
    expect(created.status).toBe(200);
    expect(created.body).toMatchObject({ group, maxReconsumeTimes: 16, orderly: false });
    // Configuring, deleting and reading a group stay admin calls.
    expectError(await api("PUT", `/v1/groups/${group}`, { orderly: true }, h), 403, "FORBIDDEN");
    expectError(await api("DELETE", `/v1/groups/${group}`, undefined, h), 403, "FORBIDDEN");
    expectError(await api("GET", `/v1/groups/${group}`, undefined, h), 403, "FORBIDDEN");
    expect((await api("GET", `/v1/groups/${group}`)).body.orderly).toBe(false);
  });

  it("creates no group outside the token's groups patterns", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("other");
    const h = bearer(await mint({ subscribe: [topic], groups: ["web-*"] }));
    for (const [method, path, body] of [
      ["POST", `/v1/groups/${group}/topics/${topic}/receive`, {}],
      ["GET", `/v1/topics/${topic}/queues/0/messages?group=${group}`, undefined],
      ["PUT", `/v1/groups/${group}/topics/${topic}/queues/0/offset`, { offset: 0 }],
      ["POST", `/v1/groups/${group}/topics/${topic}/offsets/reset`, { to: "latest" }],
      ["POST", `/v1/groups/${group}/heartbeat`, { clientId: "c", topics: [topic] }],
    ] as const) {
      expectError(await api(method, path, body, h), 403, "FORBIDDEN");
    }
    expectError(await api("GET", `/v1/groups/${group}`), 404, "GROUP_NOT_FOUND");
  });
});
