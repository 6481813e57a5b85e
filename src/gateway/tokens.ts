/**
 * Scoped tokens (RFC 8725 in mind): HS256 only, typed, audience-bound, always
 * expiring, signed and verified with Hono's JWT helpers. Nothing in a token's
 * header chooses keys or algorithms.
 */
import { decode, sign, verify } from "hono/jwt";
import { EdgemqError, badRequest } from "../protocol/errors.ts";
import { isObject } from "../protocol/validate.ts";

export const TOKEN_AUDIENCE = "edgemq";
/** The longest a minted token may live: browser tokens are meant to be short-lived. */
export const MAX_TOKEN_TTL_SECONDS = 24 * 3600;
/** Longest token accepted in an Authorization header (a token with 3 full pattern lists fits). */
export const MAX_TOKEN_BYTES = 24 * 1024;
/** Expiry and not-before are enforced with at most this leeway (api.md: at most 1 s). */
const LEEWAY_SECONDS = 1;
/** The only header fields a token may carry: nothing there may pick a key or an algorithm. */
const HEADER_FIELDS = new Set(["alg", "typ"]);

export interface TokenClaims {
  sub: string;
  publish: string[];
  subscribe: string[];
  groups: string[];
  /** Producer groups the token may name in transactions (prepare, commit, rollback). */
  producerGroups: string[];
  exp: number;
}

/** The scope claims of a token, each a list of trailing-`*` patterns. */
const SCOPE_CLAIMS = ["publish", "subscribe", "groups", "producerGroups"] as const;

/** A topic or group name, optionally ending in the trailing wildcard `*`. */
const PATTERN = /^[A-Za-z0-9_-]{0,127}\*?$/;
const MAX_PATTERNS = 32;

function isPatternList(v: unknown): v is string[] {
  return (
    Array.isArray(v) &&
    v.length <= MAX_PATTERNS &&
    v.every((p) => typeof p === "string" && p.length > 0 && PATTERN.test(p))
  );
}

function patterns(body: Record<string, unknown>, key: string): string[] {
  const v = body[key];
  if (v === undefined) return [];
  if (!isPatternList(v)) {
    throw badRequest(
      `${key} must be an array of at most ${MAX_PATTERNS} names, each optionally ending in *`,
    );
  }
  return v;
}

/** Checks a mint request body. */
export function parseMintRequest(body: unknown): {
  claims: Omit<TokenClaims, "exp">;
  ttlSeconds: number;
} {
  if (!isObject(body)) throw badRequest("body must be an object");
  const allowed = new Set(["sub", ...SCOPE_CLAIMS, "ttlSeconds"]);
  for (const k of Object.keys(body)) if (!allowed.has(k)) throw badRequest(`unknown field ${k}`);
  if (
    typeof body.sub !== "string" ||
    body.sub.length === 0 ||
    body.sub.length > 256 ||
    !body.sub.isWellFormed()
  ) {
    throw badRequest("sub must be a non-empty string of at most 256 characters");
  }
  const ttl = body.ttlSeconds ?? 3600;
  if (
    typeof ttl !== "number" ||
    !Number.isSafeInteger(ttl) ||
    ttl < 1 ||
    ttl > MAX_TOKEN_TTL_SECONDS
  ) {
    throw badRequest(`ttlSeconds must be an integer from 1 to ${MAX_TOKEN_TTL_SECONDS}`);
  }
  return {
    claims: {
      sub: body.sub,
      publish: patterns(body, "publish"),
      subscribe: patterns(body, "subscribe"),
      groups: patterns(body, "groups"),
      producerGroups: patterns(body, "producerGroups"),
    },
    ttlSeconds: ttl,
  };
}

/** Signs a scoped token: HS256, `typ: JWT`, `aud: edgemq`, `iat` and `exp` in seconds. */
export async function mintToken(
  claims: Omit<TokenClaims, "exp">,
  ttlSeconds: number,
  secret: string,
  now = Date.now(),
): Promise<{ token: string; exp: number }> {
  const iat = Math.floor(now / 1000);
  const exp = iat + ttlSeconds;
  const token = await sign({ ...claims, aud: TOKEN_AUDIENCE, iat, exp }, secret, "HS256");
  return { token, exp };
}

const unauthorized = (why: string) => new EdgemqError("UNAUTHORIZED", why);

/**
 * Verifies a token (RFC 8725): header exactly `{alg: HS256, typ: JWT}` (no
 * `kid`, `jku`, `jwk`, `x5u`, `crit`...), signature, `aud`, `exp` present and
 * at most {@link MAX_TOKEN_TTL_SECONDS} ahead, `nbf`/`iat` not in the future,
 * and well-formed scope claims. Anything wrong is UNAUTHORIZED.
 */
export async function verifyToken(
  token: string,
  secret: string,
  now = Date.now(),
): Promise<TokenClaims> {
  if (token.length > MAX_TOKEN_BYTES) throw unauthorized("token too large");
  let header: unknown;
  try {
    header = decode(token).header;
  } catch {
    throw unauthorized("invalid token");
  }
  // Decide the algorithm ourselves: a header asking for none, HS512 or a key is refused before verifying.
  if (
    !isObject(header) ||
    header.alg !== "HS256" ||
    header.typ !== "JWT" ||
    Object.keys(header).some((k) => !HEADER_FIELDS.has(k))
  ) {
    throw unauthorized("invalid token");
  }
  let payload: Record<string, unknown>;
  try {
    // Time claims are checked below, with the contract's leeway and our clock.
    payload = (await verify(token, secret, {
      alg: "HS256",
      typ: "JWT",
      aud: TOKEN_AUDIENCE,
      exp: false,
      nbf: false,
      iat: false,
    })) as Record<string, unknown>;
  } catch {
    throw unauthorized("invalid token");
  }
  const nowS = now / 1000;
  const { exp, nbf, iat, sub } = payload;
  if (typeof exp !== "number" || !Number.isFinite(exp)) throw unauthorized("token has no expiry");
  if (exp + LEEWAY_SECONDS <= nowS) throw unauthorized("token expired");
  if (exp > nowS + MAX_TOKEN_TTL_SECONDS + LEEWAY_SECONDS)
    throw unauthorized("token lives longer than the minting limit");
  if (nbf !== undefined && (typeof nbf !== "number" || nbf > nowS + LEEWAY_SECONDS))
    throw unauthorized("token not yet valid");
  if (iat !== undefined && (typeof iat !== "number" || iat > nowS + LEEWAY_SECONDS))
    throw unauthorized("token issued in the future");
  if (typeof sub !== "string" || sub.length === 0) throw unauthorized("token has no subject");
  const scope: Record<(typeof SCOPE_CLAIMS)[number], string[]> = {
    publish: [],
    subscribe: [],
    groups: [],
    producerGroups: [],
  };
  // A token minted before producerGroups existed has none: it may open no transaction.
  for (const k of SCOPE_CLAIMS) {
    const v = payload[k] ?? [];
    if (!isPatternList(v)) throw unauthorized(`token claim ${k} is malformed`);
    scope[k] = v;
  }
  return { sub, ...scope, exp };
}
