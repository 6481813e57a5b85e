/**
 * Scoped tokens (RFC 8725 in mind): HS256 only, typed, audience-bound, always
 * expiring, signed and verified with Hono's JWT helpers. Nothing in a token's
 * header chooses keys or algorithms.
 */
import { decode, sign, verify } from "hono/jwt";
import { EdgemqError, badRequest } from "../protocol/errors.ts";
import { isObject } from "../protocol/validate.ts";

export const TOKEN_AUDIENCE = "edgemq";
/** The longest a minted token may live. */
export const MAX_TOKEN_TTL_SECONDS = 7 * 24 * 3600;
const LEEWAY_SECONDS = 1;

export interface TokenClaims {
  sub: string;
  publish: string[];
  subscribe: string[];
  groups: string[];
  exp: number;
}

const PATTERN = /^[A-Za-z0-9_-]{0,127}\*?$/;

function patterns(body: Record<string, unknown>, key: string): string[] {
  const v = body[key];
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.length > 64 || !v.every((p) => typeof p === "string" && p.length > 0 && PATTERN.test(p))) {
    throw badRequest(`${key} must be an array of names, each optionally ending in *`);
  }
  return v as string[];
}

/** Checks a mint request body. */
export function parseMintRequest(body: unknown): { claims: Omit<TokenClaims, "exp">; ttlSeconds: number } {
  if (!isObject(body)) throw badRequest("body must be an object");
  if (typeof body.sub !== "string" || body.sub.length === 0 || body.sub.length > 256) {
    throw badRequest("sub must be a non-empty string");
  }
  const ttl = body.ttlSeconds ?? 3600;
  if (typeof ttl !== "number" || !Number.isSafeInteger(ttl) || ttl < 1 || ttl > MAX_TOKEN_TTL_SECONDS) {
    throw badRequest(`ttlSeconds must be an integer from 1 to ${MAX_TOKEN_TTL_SECONDS}`);
  }
  return {
    claims: {
      sub: body.sub,
      publish: patterns(body, "publish"),
      subscribe: patterns(body, "subscribe"),
      groups: patterns(body, "groups"),
    },
    ttlSeconds: ttl,
  };
}

export async function mintToken(claims: Omit<TokenClaims, "exp">, ttlSeconds: number, secret: string, now = Date.now()): Promise<{ token: string; exp: number }> {
  const iat = Math.floor(now / 1000);
  const exp = iat + ttlSeconds;
  const token = await sign({ ...claims, aud: TOKEN_AUDIENCE, iat, exp }, secret, "HS256");
  return { token, exp };
}

/** Verifies a token; anything wrong with it is UNAUTHORIZED. */
export async function verifyToken(token: string, secret: string): Promise<TokenClaims> {
  let payload: Record<string, unknown>;
  try {
    // Only HS256: a header asking for `none` or another algorithm is refused before verifying.
    if (decode(token).header.alg !== "HS256") throw new Error("alg");
    payload = (await verify(token, secret, { alg: "HS256", aud: TOKEN_AUDIENCE, exp: false, nbf: true, iat: false })) as Record<string, unknown>;
  } catch {
    throw new EdgemqError("UNAUTHORIZED", "invalid token");
  }
  const exp = payload.exp;
  if (typeof exp !== "number") throw new EdgemqError("UNAUTHORIZED", "token has no expiry");
  if (exp + LEEWAY_SECONDS < Date.now() / 1000) throw new EdgemqError("UNAUTHORIZED", "token expired");
  const list = (k: string) => (Array.isArray(payload[k]) ? (payload[k] as unknown[]).filter((x): x is string => typeof x === "string") : []);
  return { sub: String(payload.sub ?? ""), publish: list("publish"), subscribe: list("subscribe"), groups: list("groups"), exp };
}
