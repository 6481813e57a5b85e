/** `POST /v1/tokens`: what a minted token may do, and for how long. */
import { badRequest } from "../errors.ts";
import { isObject } from "./fields.ts";

/** The longest a minted token may live: browser tokens are meant to be short-lived. */
export const MAX_TOKEN_TTL_SECONDS = 24 * 3600;

/** A topic or group name, optionally ending in the trailing wildcard `*`. */
const PATTERN = /^[A-Za-z0-9_-]{0,127}\*?$/;
const MAX_PATTERNS = 32;

/** A token's subject and scope: the claims a mint request chooses. */
export interface TokenScope {
  sub: string;
  publish: string[];
  subscribe: string[];
  groups: string[];
  /** Producer groups the token may name in transactions (prepare, commit, rollback, state). */
  producerGroups: string[];
}

/** The scope claims of a token, each a list of trailing-`*` patterns. */
export const SCOPE_CLAIMS = ["publish", "subscribe", "groups", "producerGroups"] as const;

export interface MintRequest {
  claims: TokenScope;
  ttlSeconds: number;
}

/** A well-formed scope claim: at most 32 names, each optionally ending in `*`. */
export function isPatternList(v: unknown): v is string[] {
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

/** Reads a mint request body. */
export function parseMintRequest(body: unknown): MintRequest {
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
