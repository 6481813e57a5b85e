import { describe, expect, it } from "vitest";
import { createTopic } from "./helpers.ts";
import { bearer, callWithEnv } from "./token-helpers.ts";

const ORIGINS = { CORS_ORIGINS: "https://app.example, https://admin.example" };
const APP = "https://app.example";

function preflight(origin: string, env: Record<string, unknown> = ORIGINS) {
  return callWithEnv(env, "OPTIONS", "/v1/topics/orders/messages", {
    headers: {
      origin,
      "access-control-request-method": "POST",
      "access-control-request-headers": "authorization, content-type",
    },
  });
}

describe("CORS", () => {
  it("answers a preflight from an allowed origin by echoing it, without a token", async () => {
    const res = await preflight(APP);
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe(APP);
    expect(res.headers.get("access-control-allow-methods")).toContain("POST");
    expect(res.headers.get("access-control-allow-headers")?.toLowerCase()).toContain(
      "authorization",
    );
    expect(res.headers.get("access-control-allow-headers")?.toLowerCase()).toContain(
      "content-type",
    );
    expect(res.headers.get("access-control-allow-credentials")).toBeNull();
    expect(res.headers.get("vary")).toContain("Origin");
  });

  it("gives no allow-origin to an origin not listed, nor to look-alikes", async () => {
    for (const origin of [
      "https://evil.example",
      "https://app.example.evil.example",
      "http://app.example",
      "https://app.example:8443",
      "null",
      "",
    ]) {
      const res = await preflight(origin);
      expect({ origin, acao: res.headers.get("access-control-allow-origin") }).toEqual({
        origin,
        acao: null,
      });
      expect(res.headers.get("access-control-allow-credentials")).toBeNull();
    }
  });

  it("allows no origin at all when CORS_ORIGINS is empty", async () => {
    const res = await preflight(APP, { CORS_ORIGINS: "" });
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("answers with `*` only when configured so, and never with credentials", async () => {
    const res = await preflight("https://anyone.example", { CORS_ORIGINS: "*" });
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    expect(res.headers.get("access-control-allow-credentials")).toBeNull();
  });

  it("marks actual answers, errors included, so the browser can read them", async () => {
    const topic = await createTopic({ queues: 1 });
    const ok = await callWithEnv(ORIGINS, "POST", `/v1/topics/${topic}/messages`, {
      headers: { ...bearer("test-admin"), origin: APP },
      body: JSON.stringify({ messages: [{ body: "from the browser" }] }),
    });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("access-control-allow-origin")).toBe(APP);
    expect(ok.headers.get("access-control-expose-headers")).toContain("Retry-After");

    const denied = await callWithEnv(ORIGINS, "POST", `/v1/topics/${topic}/messages`, {
      headers: { origin: APP, "content-type": "application/json" },
      body: "{}",
    });
    expect(denied.status).toBe(401);
    expect(denied.headers.get("access-control-allow-origin")).toBe(APP);
    expect(((await denied.json()) as { error: { code: string } }).error.code).toBe("UNAUTHORIZED");

    const other = await callWithEnv(ORIGINS, "GET", "/v1/topics", {
      headers: { ...bearer("test-admin"), origin: "https://evil.example" },
    });
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
  });
});
