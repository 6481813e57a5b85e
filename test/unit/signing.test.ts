/**
 * The outbound signature scheme (src/protocol/signing.ts), checked against an
 * HMAC computed here: what a receiver written in any language computes.
 */
import { describe, expect, it } from "vitest";
import {
  SIGNATURE_TOLERANCE_MS,
  isLoopbackHost,
  newSigningSecret,
  outboundUrlAllowed,
  signatureHeaders,
  verifySignature,
} from "../../src/protocol/signing.ts";

const NOW = 1_764_000_000_000;
const body = JSON.stringify({ txId: "t1.orders.0.1", checkTimes: 1, note: "é😀" });
const headersOf = (h: Record<string, string>) => new Headers(h);

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

const mac = (secret: string, ts: string, raw: string) => hmacHex(secret, `${ts}.${raw}`);

describe("signing secrets", () => {
  it("are 32 random bytes in base64url, a new one each time", () => {
    const a = newSigningSecret();
    const b = newSigningSecret();
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(atob(a.replace(/-/g, "+").replace(/_/g, "/"))).toHaveLength(32);
    expect(a).not.toBe(b);
  });
});

describe("signatureHeaders", () => {
  it("signs the timestamp, a dot and the raw body with HMAC-SHA256, in hex, as v1", async () => {
    const h = await signatureHeaders(body, ["s3cret"], NOW);
    expect(h["x-edgemq-timestamp"]).toBe(String(NOW));
    expect(h["x-edgemq-signature"]).toBe(`v1=${await mac("s3cret", String(NOW), body)}`);
  });

  it("sends one v1 value per secret while a rotation overlaps, the current one first", async () => {
    const h = await signatureHeaders(body, ["new", "old"], NOW);
    expect(h["x-edgemq-signature"]).toBe(
      `v1=${await mac("new", String(NOW), body)},v1=${await mac("old", String(NOW), body)}`,
    );
  });

  it("refuses to sign without a secret: nothing goes out unsigned", async () => {
    await expect(signatureHeaders(body, [], NOW)).rejects.toThrow(/no signing secret/);
  });
});

describe("verifySignature", () => {
  const secrets = ["s3cret"];

  it("accepts a request signed with the receiver's secret", async () => {
    const h = await signatureHeaders(body, secrets, NOW);
    expect(await verifySignature(headersOf(h), body, { secrets, now: NOW })).toEqual({ ok: true });
    // Raw bytes verify the same as the string they encode.
    const bytes = new TextEncoder().encode(body);
    expect(await verifySignature(headersOf(h), bytes, { secrets, now: NOW })).toEqual({ ok: true });
  });

  it("accepts either signature of a rotation, with either of the receiver's secrets", async () => {
    const h = await signatureHeaders(body, ["new", "old"], NOW);
    for (const mine of [["old"], ["new"], ["other", "old"]]) {
      expect((await verifySignature(headersOf(h), body, { secrets: mine, now: NOW })).ok).toBe(
        true,
      );
    }
  });

  it("refuses another receiver's signature, an altered body and an altered timestamp", async () => {
    const h = await signatureHeaders(body, ["someone-else"], NOW);
    expect(await verifySignature(headersOf(h), body, { secrets, now: NOW })).toEqual({
      ok: false,
      reason: "mismatch",
    });
    const mine = await signatureHeaders(body, secrets, NOW);
    const altered = body.replace("orders", "payments");
    expect((await verifySignature(headersOf(mine), altered, { secrets, now: NOW })).ok).toBe(false);
    const moved = { ...mine, "x-edgemq-timestamp": String(NOW + 1) };
    expect((await verifySignature(headersOf(moved), body, { secrets, now: NOW })).ok).toBe(false);
  });

  it("refuses a timestamp more than 5 minutes from the receiver's clock, either way", async () => {
    const h = await signatureHeaders(body, secrets, NOW);
    const at = (now: number) => verifySignature(headersOf(h), body, { secrets, now });
    expect((await at(NOW + SIGNATURE_TOLERANCE_MS)).ok).toBe(true);
    expect(await at(NOW + SIGNATURE_TOLERANCE_MS + 1)).toEqual({ ok: false, reason: "stale" });
    expect(await at(NOW - SIGNATURE_TOLERANCE_MS - 1)).toEqual({ ok: false, reason: "stale" });
  });

  it("refuses missing and malformed headers, and skips versions it does not know", async () => {
    const good = await mac("s3cret", String(NOW), body);
    const cases: [Record<string, string>, string][] = [
      [{}, "missing"],
      [{ "x-edgemq-timestamp": String(NOW) }, "missing"],
      [{ "x-edgemq-signature": `v1=${good}` }, "missing"],
      [{ "x-edgemq-timestamp": "soon", "x-edgemq-signature": `v1=${good}` }, "malformed"],
      [{ "x-edgemq-timestamp": String(NOW), "x-edgemq-signature": good }, "malformed"],
      [{ "x-edgemq-timestamp": String(NOW), "x-edgemq-signature": "v1=zz" }, "malformed"],
      [{ "x-edgemq-timestamp": String(NOW), "x-edgemq-signature": `v0=${good}` }, "malformed"],
    ];
    for (const [h, reason] of cases) {
      expect(await verifySignature(headersOf(h), body, { secrets, now: NOW })).toEqual({
        ok: false,
        reason,
      });
    }
    const mixed = { "x-edgemq-timestamp": String(NOW), "x-edgemq-signature": `v2=abc, v1=${good}` };
    expect((await verifySignature(headersOf(mixed), body, { secrets, now: NOW })).ok).toBe(true);
  });
});

describe("outbound URLs", () => {
  it("knows loopback host names", () => {
    for (const h of ["localhost", "LOCALHOST", "app.localhost", "127.0.0.1", "127.9.8.7", "[::1]"])
      expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ["example.com", "10.0.0.1", "128.0.0.1", "localhost.example.com", "[::2]"])
      expect(isLoopbackHost(h), h).toBe(false);
  });

  it("takes https anywhere, http only for loopback unless the broker runs locally", () => {
    const ok = (u: string, local: boolean) => outboundUrlAllowed(new URL(u), local);
    expect(ok("https://example.com/check", false)).toBe(true);
    expect(ok("http://example.com/check", false)).toBe(false);
    expect(ok("http://127.0.0.1:9000/check", false)).toBe(true);
    expect(ok("http://[::1]:9000/check", false)).toBe(true);
    expect(ok("http://example.com/check", true)).toBe(true);
    expect(ok("ftp://example.com/check", true)).toBe(false);
  });
});
