/**
 * Issue 16, item 8: failed authentication is limited per client address.
 * Past its budget an address is answered 429 before its credential is looked
 * at (a guess gets no answer, right or wrong); other addresses and working
 * clients are not affected. Deployed, the address is Cloudflare's
 * CF-Connecting-IP (an IPv6 client by its /64); locally it is not trusted.
 */
import { describe, expect, it } from "vitest";
import { ipv6Prefix64 } from "../../src/gateway/auth-failures.ts";
import { createTopic } from "./helpers.ts";
import { callWithEnv, expectError, mint } from "./token-helpers.ts";

let n = 0;
/** An IPv4 address no other test uses. */
const freshIp = () => `198.51.${Math.floor(n / 250) % 250}.${(n++ % 250) + 1}`;

const deployed = (budget: string) => ({
  EDGEMQ_LOCAL: undefined,
  AUTH_FAILURES_PER_MINUTE: budget,
});

async function call(
  env: Record<string, unknown>,
  ip: string | undefined,
  token: string,
  path = "/v1/topics",
) {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (ip !== undefined) headers["cf-connecting-ip"] = ip;
  const res = await callWithEnv(env, "GET", path, { headers });
  const text = await res.text();
  return {
    status: res.status,
    body: (res.status === 200 && path === "/metrics" ? text : JSON.parse(text)) as any,
    retryAfter: res.headers.get("retry-after"),
  };
}

describe("failed authentication per client address", () => {
  it("answers 429 with Retry-After once an address used its budget, even to the right token", async () => {
    const env = deployed("5");
    const ip = freshIp();
    for (let i = 0; i < 5; i++) expectError(await call(env, ip, `guess-${i}`), 401, "UNAUTHORIZED");
    const limited = await call(env, ip, "guess-5");
    expectError(limited, 429, "RATE_LIMITED");
    // 5 a minute: one more attempt every 12 s.
    expect(Number(limited.retryAfter)).toBe(12);
    // The admin token itself gets no answer from this address now, so guessing learns nothing.
    expectError(await call(env, ip, "test-admin"), 429, "RATE_LIMITED");
    // Another address is not affected.
    expect((await call(env, freshIp(), "test-admin")).status).toBe(200);
  });

  it("never spends the budget on requests that authenticate", async () => {
    const env = deployed("3");
    const ip = freshIp();
    const token = await mint({ publish: ["*"], subscribe: ["*"] });
    const topic = await createTopic({ queues: 1 });
    for (let i = 0; i < 20; i++) {
      expect((await call(env, ip, token, `/v1/topics/${topic}/route`)).status).toBe(200);
      expect((await call(env, ip, "test-admin")).status).toBe(200);
    }
    for (let i = 0; i < 3; i++) expect((await call(env, ip, "wrong")).status).toBe(401);
    expect((await call(env, ip, "wrong")).status).toBe(429);
  });

  it("counts an IPv6 client by its /64", async () => {
    const env = deployed("2");
    const prefix = `2001:db8:${(n++).toString(16)}:1`;
    expect((await call(env, `${prefix}::a`, "x")).status).toBe(401);
    expect((await call(env, `${prefix}:0:0:0:b`, "x")).status).toBe(401);
    expect((await call(env, `${prefix}::c`, "test-admin")).status).toBe(429);
    expect((await call(env, `2001:db8:${(n++).toString(16)}:2::a`, "test-admin")).status).toBe(200);
  });

  it("limits guesses of METRICS_TOKEN the same way", async () => {
    const env = { ...deployed("2"), METRICS_TOKEN: "scrape-secret" };
    const ip = freshIp();
    expect((await call(env, ip, "scrape-guess-1", "/metrics")).status).toBe(401);
    expect((await call(env, ip, "scrape-guess-2", "/metrics")).status).toBe(401);
    expectError(await call(env, ip, "scrape-secret", "/metrics"), 429, "RATE_LIMITED");
    expect((await call(env, freshIp(), "scrape-secret", "/metrics")).status).toBe(200);
  });

  it("closes an address for a minute when the location-wide AUTH_FAILURE_LIMITER says it is over", async () => {
    // The isolate's own budget is large here: only the binding (60 a minute) can stop it.
    const env = deployed("100000");
    const ip = freshIp();
    let first429 = -1;
    for (let i = 0; i < 70 && first429 < 0; i++) {
      const r = await call(env, ip, `guess-${i}`);
      if (r.status === 429) first429 = i;
      else expect(r.status).toBe(401);
    }
    expect(first429).toBeGreaterThan(0);
    expect(first429).toBeLessThanOrEqual(61);
    expectError(await call(env, ip, "test-admin"), 429, "RATE_LIMITED");
  });

  it("counts bad tokens of session upgrades too, and then refuses the upgrade", async () => {
    const env = deployed("2");
    const ip = freshIp();
    const topic = await createTopic({ queues: 1 });
    const upgrade = (token: string) =>
      callWithEnv(env, "GET", `/v1/topics/${topic}/queues/0/session`, {
        headers: {
          upgrade: "websocket",
          "cf-connecting-ip": ip,
          "sec-websocket-protocol": `edgemq.v1, edgemq.bearer.${btoa(token).replace(/=+$/, "")}`,
        },
      });
    // A refused upgrade that speaks the protocol completes and closes with an error frame.
    for (const guess of ["guess-a", "guess-b"]) {
      const res = await upgrade(guess);
      expect(res.status).toBe(101);
      res.webSocket?.accept();
      res.webSocket?.close();
    }
    expectError(await call(env, ip, "test-admin"), 429, "RATE_LIMITED");
  });

  it("is off with AUTH_FAILURES_PER_MINUTE=0", async () => {
    const env = deployed("0");
    const ip = freshIp();
    for (let i = 0; i < 10; i++) expect((await call(env, ip, "wrong")).status).toBe(401);
    expect((await call(env, ip, "test-admin")).status).toBe(200);
  });

  it("locally ignores CF-Connecting-IP: a client cannot buy budgets by naming addresses", async () => {
    const env = { EDGEMQ_LOCAL: "1", AUTH_FAILURES_PER_MINUTE: "3" };
    for (let i = 0; i < 3; i++) expect((await call(env, freshIp(), "wrong")).status).toBe(401);
    expectError(await call(env, freshIp(), "wrong"), 429, "RATE_LIMITED");
  });
});

describe("ipv6Prefix64", () => {
  it("expands :: and keeps the first four groups", () => {
    expect(ipv6Prefix64("2001:db8::1")).toBe("2001:db8:0:0");
    expect(ipv6Prefix64("2001:0DB8:0001:0002:3:4:5:6")).toBe("2001:db8:1:2");
    expect(ipv6Prefix64("::1")).toBe("0:0:0:0");
    expect(ipv6Prefix64("fe80:1:2:3::")).toBe("fe80:1:2:3");
  });
});
