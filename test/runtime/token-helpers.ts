/**
 * Helpers for auth tests: minting real tokens through the API, forging
 * hostile ones by hand, and calling the gateway with a token or a custom env.
 */
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { app } from "../../src/gateway/app.ts";
import { api } from "./helpers.ts";

export const SECRET = "test-secret";

/** Headers carrying a bearer token. */
export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}`, "content-type": "application/json" };
}

/** Mints a scoped token through `POST /v1/tokens` as admin. */
export async function mint(scope: {
  sub?: string;
  publish?: string[];
  subscribe?: string[];
  groups?: string[];
  producerGroups?: string[];
  ttlSeconds?: number;
}): Promise<string> {
  const r = await api("POST", "/v1/tokens", { sub: "test", ...scope });
  if (r.status !== 200) throw new Error(`mint: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.token as string;
}

const b64url = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
const part = (v: unknown) => b64url(new TextEncoder().encode(JSON.stringify(v)));

/** Builds a JWT with any header and payload, HMAC-signed with `secret` (or unsigned for `none`). */
export async function forge(
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
  secret = SECRET,
  hash: "SHA-256" | "SHA-512" = "SHA-256",
): Promise<string> {
  const input = `${part(header)}.${part(payload)}`;
  if (header.alg === "none") return `${input}.`;
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash },
    false,
    ["sign"],
  );
  const sig = new Uint8Array(
    await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(input)),
  );
  return `${input}.${b64url(sig)}`;
}

/** A payload like a minted token's: every scope, valid for an hour. */
export function claims(over: Record<string, unknown> = {}): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  return {
    sub: "forger",
    publish: ["*"],
    subscribe: ["*"],
    groups: ["*"],
    aud: "edgemq",
    iat: now,
    exp: now + 3600,
    ...over,
  };
}

/**
 * Calls the gateway app directly with a modified env (unset keys with
 * `undefined`), at `base` (default `http://edgemq.test`; the open mode serves
 * loopback names only).
 */
export async function callWithEnv(
  overrides: Record<string, unknown>,
  method: string,
  path: string,
  init: { body?: BodyInit; headers?: Record<string, string>; base?: string } = {},
): Promise<Response> {
  const e = { ...env, ...overrides };
  const req = new Request(`${init.base ?? "http://edgemq.test"}${path}`, {
    method,
    headers: init.headers ?? {},
    body: init.body ?? null,
  });
  return app.request(req, undefined, e);
}

/** Asserts a response is an error in the contract's shape with this status and code. */
export function expectError(r: { status: number; body: any }, status: number, code: string): void {
  expect({ status: r.status, code: r.body?.error?.code }).toEqual({ status, code });
  expect(typeof r.body.error.message).toBe("string");
  expect(Object.keys(r.body)).toEqual(["error"]);
}
