/**
 * Scoped tokens (RFC 8725 in mind): HS256 only, typed, audience-bound, always
 * expiring, signed and verified with Hono's JWT helpers. Nothing in a token's
 * header chooses keys or algorithms.
 */
import { decode, sign, verify } from "hono/jwt";
import { EdgemqError } from "../protocol/errors.ts";
import { isObject } from "../protocol/requests/fields.ts";
import {
  MAX_TOKEN_TTL_SECONDS,
  SCOPE_CLAIMS,
  type TokenScope,
  isPatternList,
} from "../protocol/requests/tokens.ts";

export const TOKEN_AUDIENCE = "edgemq";
/** Longest token accepted in an Authorization header (a token with 4 full pattern lists fits). */
export const MAX_TOKEN_BYTES = 24 * 1024;
/** Expiry and not-before are enforced with at most this leeway (api.md: at most 1 s). */
const LEEWAY_SECONDS = 1;
/** The only header fields a token may carry: nothing there may pick a key or an algorithm. */
const HEADER_FIELDS = new Set(["alg", "typ"]);

/** The claims of a verified token: its scope and expiry (seconds). */
export interface TokenClaims extends TokenScope {
  exp: number;
}

/** Signs a scoped token: HS256, `typ: JWT`, `aud: edgemq`, `iat` and `exp` in seconds. */
export async function mintToken(
  claims: TokenScope,
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
