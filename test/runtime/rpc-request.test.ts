/**
 * The Service Binding's `request(method, path, body)` answers every call in
 * the contract's shape, `{status, body}`, bad calls included: they are
 * checked as they arrive at the entrypoint, as HTTP requests are checked
 * by the HTTP parser in front of the routes.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";

const worker = env.BINDING_WORKER;

async function raw(method: string, path: string, body?: unknown) {
  const r = await worker.raw(method, path, body === undefined ? undefined : JSON.stringify(body));
  return { status: r.status, body: r.json ? JSON.parse(r.json) : undefined };
}

describe("EdgemqRpc.request, given a bad call", () => {
  it("answers 400 BAD_REQUEST for a body on a GET or HEAD", async () => {
    for (const method of ["GET", "head"]) {
      expect(await raw(method, "/v1/topics", { x: 1 })).toEqual({
        status: 400,
        body: { error: { code: "BAD_REQUEST", message: expect.stringMatching(/no body/) } },
      });
    }
  });

  it("answers 400 BAD_REQUEST for a method that is not an HTTP method", async () => {
    for (const method of ["", "G ET", "CONNECT", "TRACE"]) {
      const r = await raw(method, "/v1/topics");
      expect({ method, status: r.status, code: r.body?.error?.code }).toEqual({
        method,
        status: 400,
        code: "BAD_REQUEST",
      });
    }
  });

  it("answers a path outside /v1/ with 404 NOT_FOUND, as before", async () => {
    expect(await raw("GET", "/metrics")).toEqual({
      status: 404,
      body: { error: { code: "NOT_FOUND", message: "paths start with /v1/" } },
    });
  });
});
