/**
 * Authentication and authorization. A request carries `Authorization:
 * Bearer <token>`: the ADMIN_TOKEN (every permission), or an HS256 token
 * signed with TOKEN_SECRET holding `publish`, `subscribe`, `groups` and
 * `producerGroups` patterns. Service Binding calls (the RPC entrypoint) are
 * trusted. Failed authentication is limited per client address
 * (auth-failures.ts).
 */
import type { Context, MiddlewareHandler } from "hono";
import type { Env } from "../env.ts";
import { EdgemqError } from "../protocol/errors.ts";
import { Limits } from "../protocol/limits.ts";
import { authGate, recordAuthFailure } from "./auth-failures.ts";
import { MAX_TOKEN_BYTES, type TokenClaims, verifyToken } from "./tokens.ts";

/** Who is calling: an admin, or the holder of a scoped token. */
export type Principal = { admin: true; sub: string } | ({ admin: false } & TokenClaims);

/** Marks an env as coming from the RPC entrypoint (a symbol no HTTP request can carry). */
export const TRUSTED = Symbol("edgemq.trusted");

export type GatewayEnv = {
  Bindings: Env & { [TRUSTED]?: true };
  Variables: { principal: Principal };
};

/** Constant-time string comparison, so a token cannot be guessed byte by byte from timing. */
export function timingSafeEqual(a: string, b: string): boolean {
  const enc = new TextEncoder();
  const x = enc.encode(a);
  const y = enc.encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

/** Query parameters that would carry a token in a URL (and so into logs and Referer headers). */
const TOKEN_QUERY_PARAMS = [
  "token",
  "access_token",
  "access-token",
  "jwt",
  "auth",
  "authorization",
];

/**
 * Resolves the caller. Health never gets here; everything else does. Tokens
 * travel only in `Authorization: Bearer`; one offered in the query string is
 * refused (400) so clients learn at once rather than leak it into logs.
 */
export const authenticate: MiddlewareHandler<GatewayEnv> = async (c, next) => {
  const env = c.env;
  if (env[TRUSTED]) {
    c.set("principal", { admin: true, sub: "service-binding" });
    return next();
  }
  const query = new URL(c.req.url).searchParams;
  for (const name of TOKEN_QUERY_PARAMS) {
    if (query.has(name)) {
      throw new EdgemqError(
        "BAD_REQUEST",
        `tokens go in the Authorization header, never in the URL (?${name}=)`,
      );
    }
  }
  // Open local mode looks at no header at all.
  if (!env.ADMIN_TOKEN && !env.TOKEN_SECRET) {
    c.set("principal", await principalFor(undefined, env));
    return next();
  }
  c.set("principal", await gatedPrincipal(c, () => bearerOf(tokenHeader(c))));
  return next();
};

/** The Authorization header, refused (UNAUTHORIZED) when too large to hold a token. */
function tokenHeader(c: Context<GatewayEnv>): string | undefined {
  const header = c.req.header("authorization");
  if (header !== undefined && header.length > MAX_TOKEN_BYTES + 16)
    throw new EdgemqError("UNAUTHORIZED", "token too large");
  return header;
}

/**
 * {@link principalFor} behind the per-address gate of failed authentication:
 * an address out of budget is answered 429 before `token()` is even read,
 * and every UNAUTHORIZED spends one unit of its budget. Used wherever a
 * request presents a credential (the middleware, the session upgrade).
 */
export async function gatedPrincipal(
  c: Context<GatewayEnv>,
  token: () => string | undefined,
): Promise<Principal> {
  authGate(c);
  try {
    return await principalFor(token(), c.env);
  } catch (e) {
    if (e instanceof EdgemqError && e.code === "UNAUTHORIZED") await recordAuthFailure(c);
    throw e;
  }
}

/** True when the broker runs open: `npm start` with neither secret (every caller is admin). */
export function isOpenMode(env: GatewayEnv["Bindings"]): boolean {
  return !env[TRUSTED] && !env.ADMIN_TOKEN && !env.TOKEN_SECRET && env.EDGEMQ_LOCAL === "1";
}

/** The token of an `Authorization: Bearer` header; UNAUTHORIZED when the header is malformed. */
export function bearerOf(header: string | undefined | null): string | undefined {
  if (header === undefined || header === null || header === "") return undefined;
  const m = /^Bearer +([!-~]+)$/i.exec(header);
  if (!m)
    throw new EdgemqError(
      "UNAUTHORIZED",
      "a bearer token is required (Authorization: Bearer <token>)",
    );
  return m[1]!;
}

/**
 * Who holds `token` (undefined: none was given). The one resolver of the
 * gateway's middleware, the session upgrade and a session's auth frame: the
 * ADMIN_TOKEN, a valid scoped token, or (on `npm start` without secrets)
 * the open local principal. Anything else is UNAUTHORIZED.
 */
export async function principalFor(
  token: string | undefined,
  env: Pick<Env, "ADMIN_TOKEN" | "TOKEN_SECRET" | "EDGEMQ_LOCAL">,
): Promise<Principal> {
  if (!env.ADMIN_TOKEN && !env.TOKEN_SECRET) {
    // `npm start` without secrets: open, on loopback only.
    if (env.EDGEMQ_LOCAL === "1") return { admin: true, sub: "local" };
    throw new EdgemqError(
      "NOT_CONFIGURED",
      "set ADMIN_TOKEN or TOKEN_SECRET (wrangler secret put)",
    );
  }
  if (token === undefined)
    throw new EdgemqError(
      "UNAUTHORIZED",
      "a bearer token is required (Authorization: Bearer <token>)",
    );
  if (token.length > MAX_TOKEN_BYTES) throw new EdgemqError("UNAUTHORIZED", "token too large");
  if (env.ADMIN_TOKEN && timingSafeEqual(token, env.ADMIN_TOKEN)) {
    return { admin: true, sub: "admin" };
  }
  if (!env.TOKEN_SECRET) throw new EdgemqError("UNAUTHORIZED", "invalid token");
  const claims = await verifyToken(token, env.TOKEN_SECRET);
  return { admin: false, ...claims };
}

/**
 * The msgId space a principal sends in (api.md, "Dedup is per sender"): a
 * scoped token's subject; null, the one space of the admin token, Service
 * Bindings and the open local mode, otherwise. Dedup, query and recall by
 * msgId and ending a transaction act within it; null sees every space.
 */
export function senderSpace(p: Principal): string | null {
  return p.admin ? null : p.sub;
}

/**
 * The owner recorded for what a principal registers in the registry (a
 * heartbeat's clientId): its {@link senderSpace} as a non-null key
 * (`sub:<subject>`, or `admin` for the admin space), since a missing owner
 * there means a member from before owners were recorded.
 */
export function memberOwner(p: Principal): string {
  const space = senderSpace(p);
  return space === null ? "admin" : `sub:${space}`;
}

/**
 * Who a long-poll of this request waits for: the caller's sender space (a
 * scoped token's parked waits are capped) and the request's abort signal (a
 * client that hangs up ends its wait).
 */
export function waitContext(c: Context<GatewayEnv>): {
  sender: string | null;
  signal: AbortSignal;
} {
  return { sender: senderSpace(c.get("principal")), signal: c.req.raw.signal };
}

/**
 * A trailing-`*` pattern match over a whole name. Only names of the contract's
 * pattern can match (no `/`, `.`, `%`), whatever the caller checked before.
 */
export function matchesPattern(pattern: string, name: string): boolean {
  if (!Limits.namePattern.test(name)) return false;
  if (pattern.endsWith("*")) return name.startsWith(pattern.slice(0, -1));
  return pattern === name;
}

function allowed(patterns: readonly string[] | undefined, name: string): boolean {
  return (patterns ?? []).some((p) => matchesPattern(p, name));
}

/** Requires every permission. */
export function requireAdmin(c: Context<GatewayEnv>): void {
  if (!c.get("principal").admin)
    throw new EdgemqError("FORBIDDEN", "this call needs the admin token");
}

/** Requires the right to publish to `topic` (send and transactions). */
export function requirePublish(c: Context<GatewayEnv>, topic: string): void {
  const p = c.get("principal");
  if (p.admin || allowed(p.publish, topic)) return;
  throw new EdgemqError("FORBIDDEN", `token may not publish to ${topic}`);
}

/**
 * Requires the right to consume `topic` (pull, receive, ack, nack,
 * invisibility, offsets), and, when a group is named, to act as that group.
 * A pull by offset without a group reads the log only: the topic scope covers it.
 */
export function requireSubscribe(
  c: Context<GatewayEnv>,
  topic: string,
  group: string | undefined,
): void {
  const p = c.get("principal");
  if (p.admin) return;
  if (!allowed(p.subscribe, topic))
    throw new EdgemqError("FORBIDDEN", `token may not subscribe to ${topic}`);
  if (group !== undefined) requireGroup(c, group);
}

/** Requires the right to act as consumer group `group` (its `groups` patterns). */
export function requireGroup(c: Context<GatewayEnv>, group: string): void {
  const p = c.get("principal");
  if (p.admin || allowed(p.groups, group)) return;
  throw new EdgemqError("FORBIDDEN", `token may not consume as group ${group}`);
}

/**
 * Requires the right to name producer group `pg` in a transaction (prepare,
 * commit, rollback, state): its `producerGroups` patterns. The broker sends
 * check-backs signed with that group's secret to its URL, so whoever may
 * name it can make the broker call that URL about messages they wrote.
 */
export function requireProducerGroup(c: Context<GatewayEnv>, pg: string): void {
  const p = c.get("principal");
  if (p.admin || allowed(p.producerGroups, pg)) return;
  throw new EdgemqError("FORBIDDEN", `token may not use producer group ${pg}`);
}

/** Requires the right to publish to or subscribe to `topic` (reading its route). */
export function requireTopicAccess(c: Context<GatewayEnv>, topic: string): void {
  const p = c.get("principal");
  if (p.admin || allowed(p.publish, topic) || allowed(p.subscribe, topic)) return;
  throw new EdgemqError("FORBIDDEN", `token has no access to topic ${topic}`);
}

/** What a session's principal may do on its topic (and group), fixed when the session authenticates. */
export interface SessionGrant {
  /** Who: the token's subject (sessions per subject are bounded per shard). */
  sub: string;
  /** May send to the topic. */
  publish: boolean;
  /** May consume the topic (pull by offset; with the session's group, receive and offsets too). */
  consume: boolean;
  /** When the token expires (Unix ms), or null for the admin token and the open local mode. */
  exp: number | null;
  /** The msgId space its sends dedup in ({@link senderSpace}): the subject, or null for the admin. */
  sender: string | null;
}

/**
 * The grant of a session on `topic` (and `group`, when the session names
 * one): FORBIDDEN when the principal may do nothing there. A session with a
 * group may consume only if the token may act as that group.
 */
export function sessionGrant(p: Principal, topic: string, group: string | null): SessionGrant {
  if (p.admin) return { sub: p.sub, publish: true, consume: true, exp: null, sender: null };
  const publish = allowed(p.publish, topic);
  const consume = allowed(p.subscribe, topic) && (group === null || allowed(p.groups, group));
  if (!publish && !consume) {
    throw new EdgemqError(
      "FORBIDDEN",
      group === null
        ? `token has no access to topic ${topic}`
        : `token may neither publish to ${topic} nor consume it as group ${group}`,
    );
  }
  return { sub: p.sub, publish, consume, exp: p.exp * 1000, sender: senderSpace(p) };
}
