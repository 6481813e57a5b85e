import { describe, expect, it } from "vitest";
import { EdgemqError } from "../../src/protocol/errors.ts";
import {
  BindingTransport,
  HttpTransport,
  isNetworkError,
  isRetryable,
} from "../../client/transport.ts";

function fetchAnswering(status: number, body: string, headers: Record<string, string> = {}) {
  const seen: Request[] = [];
  const fake = async (input: RequestInfo | URL, init?: RequestInit) => {
    seen.push(new Request(input, init));
    return new Response(body, { status, headers });
  };
  return { fetch: fake as typeof fetch, seen };
}

describe("HttpTransport", () => {
  it("sends JSON with a bearer token and returns the parsed answer", async () => {
    const f = fetchAnswering(200, '{"ok":true}');
    const t = new HttpTransport({ endpoint: "http://mq.local/", token: "tok", fetch: f.fetch });
    expect(await t.request("POST", "/v1/topics/t/messages", { messages: [] })).toEqual({
      ok: true,
    });
    const req = f.seen[0]!;
    expect(req.url).toBe("http://mq.local/v1/topics/t/messages");
    expect(req.headers.get("authorization")).toBe("Bearer tok");
    expect(req.headers.get("content-type")).toBe("application/json");
    expect(await req.json()).toEqual({ messages: [] });
  });

  it("asks an async token provider for the token on each request", async () => {
    const f = fetchAnswering(200, "{}");
    let n = 0;
    const t = new HttpTransport({
      endpoint: "http://mq.local",
      token: async () => `t${++n}`,
      fetch: f.fetch,
    });
    await t.request("GET", "/v1/health");
    await t.request("GET", "/v1/health");
    expect(f.seen.map((r) => r.headers.get("authorization"))).toEqual(["Bearer t1", "Bearer t2"]);
  });

  it("turns a contract error body into the EdgemqError with its code and details", async () => {
    const f = fetchAnswering(
      400,
      JSON.stringify({ error: { code: "BAD_REQUEST", message: "nope", index: 2 } }),
    );
    const t = new HttpTransport({ endpoint: "http://mq.local", fetch: f.fetch });
    const err = (await t.request("GET", "/v1/x").catch((e: unknown) => e)) as EdgemqError;
    expect(err).toBeInstanceOf(EdgemqError);
    expect(err.code).toBe("BAD_REQUEST");
    expect(err.message).toBe("nope");
    expect(err.details).toMatchObject({ index: 2, httpStatus: 400 });
    expect(isRetryable(err)).toBe(false);
  });

  it("gives a non-contract 502 the code UNAVAILABLE and marks it retryable", async () => {
    const f = fetchAnswering(502, "<html>bad gateway</html>");
    const t = new HttpTransport({ endpoint: "http://mq.local", fetch: f.fetch });
    const err = (await t.request("GET", "/v1/x").catch((e: unknown) => e)) as EdgemqError;
    expect(err.code).toBe("UNAVAILABLE");
    expect(err.details?.httpStatus).toBe(502);
    expect(isRetryable(err)).toBe(true);
  });

  it("gives a non-contract 500 the code INTERNAL", async () => {
    const f = fetchAnswering(500, "");
    const t = new HttpTransport({ endpoint: "http://mq.local", fetch: f.fetch });
    await expect(t.request("GET", "/v1/x")).rejects.toMatchObject({ code: "INTERNAL" });
  });

  it("reads Retry-After of a 429 into details.retryAfterMs", async () => {
    const f = fetchAnswering(
      429,
      JSON.stringify({ error: { code: "RATE_LIMITED", message: "slow" } }),
      {
        "retry-after": "2",
      },
    );
    const t = new HttpTransport({ endpoint: "http://mq.local", fetch: f.fetch });
    const err = (await t.request("GET", "/v1/x").catch((e: unknown) => e)) as EdgemqError;
    expect(err.details?.retryAfterMs).toBe(2000);
    expect(isRetryable(err)).toBe(true);
  });

  it("reports a fetch TypeError as a network error with code UNAVAILABLE", async () => {
    const t = new HttpTransport({
      endpoint: "http://mq.local",
      fetch: (async () => {
        throw new TypeError("Failed to fetch");
      }) as typeof fetch,
    });
    const err = (await t.request("GET", "/v1/x").catch((e: unknown) => e)) as EdgemqError;
    expect(err.code).toBe("UNAVAILABLE");
    expect(isNetworkError(err)).toBe(true);
    expect(err.cause).toBeInstanceOf(TypeError);
  });

  it("rejects with the abort reason, not a network error, when its signal aborts", async () => {
    const t = new HttpTransport({
      endpoint: "http://mq.local",
      fetch: ((_: unknown, init?: RequestInit) =>
        new Promise((_, reject) =>
          init?.signal?.addEventListener("abort", () => reject(init.signal!.reason)),
        )) as typeof fetch,
    });
    const ac = new AbortController();
    const p = t.request("GET", "/v1/x", undefined, ac.signal);
    const reason = new DOMException("stop", "AbortError");
    ac.abort(reason);
    await expect(p).rejects.toBe(reason);
  });
});

describe("BindingTransport", () => {
  it("passes method, path and body to the binding and returns the body of a 2xx", async () => {
    const calls: unknown[][] = [];
    const t = new BindingTransport({
      async request(...args) {
        calls.push(args);
        return { status: 200, body: { results: [] } };
      },
    });
    expect(await t.request("POST", "/v1/topics/t/messages", { messages: [] })).toEqual({
      results: [],
    });
    expect(calls).toEqual([["POST", "/v1/topics/t/messages", { messages: [] }]]);
  });

  it("turns a non-2xx answer into an EdgemqError", async () => {
    const t = new BindingTransport({
      async request() {
        return { status: 404, body: { error: { code: "TOPIC_NOT_FOUND", message: "no topic t" } } };
      },
    });
    await expect(t.request("GET", "/v1/topics/t")).rejects.toMatchObject({
      code: "TOPIC_NOT_FOUND",
    });
  });

  it("recovers the code of an error thrown across the RPC boundary", async () => {
    const t = new BindingTransport({
      async request() {
        throw new EdgemqError("FORBIDDEN", "no").toRpcError();
      },
    });
    await expect(t.request("GET", "/v1/x")).rejects.toMatchObject({ code: "FORBIDDEN" });
  });
});
