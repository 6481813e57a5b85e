/**
 * Authentication and authorization. A request carries `Authorization:
 * Bearer <token>`: the ADMIN_TOKEN (every permission), or an HS256 token
 * signed with TOKEN_SECRET holding `publish`, `subscribe` and `groups`
 * patterns. Service Binding calls (the RPC entrypoint) are trusted.
 */
import type { Context, MiddlewareHandler } from "hono";
import type { Env } from "../env.ts";
import { EdgemqError } from "../protocol/errors.ts";
import { type TokenClaims, verifyToken } from "./tokens.ts";

/** Who is calling: an admin, or the holder of a scoped token. */
export type Principal = { admin: true; sub: string } | ({ admin: false } & TokenClaims);

/** Marks an env as coming from the RPC entrypoint (a symbol no HTTP request can carry). */
export const TRUSTED = Symbol("edgemq.trusted");

export type GatewayEnv = { Bindings: Env & { [TRUSTED]?: true }; Variables: { principal: Principal } };

/** Constant-time string comparison, so a token cannot be guessed byte by byte from timing. */
export function timingSafeEqual(a: string, b: string): boolean {
  const enc = new TextEncoder();
  const x = enc.encode(a);
  const y = enc.encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

/** Resolves the caller. Health never gets here; everything else does. */
export const authenticate: MiddlewareHandler<GatewayEnv> = async (c, next) => {
  const env = c.env;
  if (env[TRUSTED]) {
    c.set("principal", { admin: true, sub: "service-binding" });
    return next();
  }
  if (!env.ADMIN_TOKEN && !env.TOKEN_SECRET) {
    if (env.EDGEMQ_LOCAL === "1") {
      // `npm start` without secrets: open, on loopback only.
      c.set("principal", { admin: true, sub: "local" });
      return next();
    }
    throw new EdgemqError("NOT_CONFIGURED", "set ADMIN_TOKEN or TOKEN_SECRET (wrangler secret put)");
  }
  const header = c.req.header("authorization") ?? "";
  const m = /^Bearer ([^\s]+)$/i.exec(header);
  if (!m) throw new EdgemqError("UNAUTHORIZED", "a bearer token is required");
  const token = m[1]!;
  if (env.ADMIN_TOKEN && timingSafeEqual(token, env.ADMIN_TOKEN)) {
    c.set("principal", { admin: true, sub: "admin" });
    return next();
  }
  if (!env.TOKEN_SECRET) throw new EdgemqError("UNAUTHORIZED", "invalid token");
  const claims = await verifyToken(token, env.TOKEN_SECRET);
  c.set("principal", { admin: false, ...claims });
  return next();
};

/** A trailing-`*` pattern match over a whole name (names cannot contain `/` or `.`). */
export function matchesPattern(pattern: string, name: string): boolean {
  if (pattern.endsWith("*")) return name.startsWith(pattern.slice(0, -1));
  return pattern === name;
}

function allowed(patterns: readonly string[] | undefined, name: string): boolean {
  return (patterns ?? []).some((p) => matchesPattern(p, name));
}

/** Requires every permission. */
export function requireAdmin(c: Context<GatewayEnv>): void {
  if (!c.get("principal").admin) throw new EdgemqError("FORBIDDEN", "this call needs the admin token");
}

/** Requires the right to publish to `topic` (send and transactions). */
export function requirePublish(c: Context<GatewayEnv>, topic: string): void {
  const p = c.get("principal");
  if (p.admin || allowed(p.publish, topic)) return;
  throw new EdgemqError("FORBIDDEN", `token may not publish to ${topic}`);
}

/** Requires the right to consume `topic` as `group` (pull, receive, ack, offsets). */
export function requireSubscribe(c: Context<GatewayEnv>, topic: string, group: string | undefined): void {
  const p = c.get("principal");
  if (p.admin) return;
  if (!allowed(p.subscribe, topic)) throw new EdgemqError("FORBIDDEN", `token may not subscribe to ${topic}`);
  if (group !== undefined && !allowed(p.groups, group)) {
    throw new EdgemqError("FORBIDDEN", `token may not consume as group ${group}`);
  }
  if (group === undefined && !p.admin) {
    // Pull by offset without a group reads the log: the subscribe scope covers it.
    return;
  }
}
