/**
 * The gateway Worker: edgemq's NameServer. Stateless; authenticates,
 * validates and routes every call to the registry or a queue shard.
 */
import { Hono } from "hono";
import { cors } from "hono/cors";
import { consoleRoutes } from "../console/routes.tsx";
import { EdgemqError, badRequest } from "../protocol/errors.ts";
import { parseMintRequest } from "../protocol/requests/tokens.ts";
import { authenticate, type GatewayEnv, requireAdmin } from "./auth.ts";
import { jsonBody, limitHeaders } from "./http.ts";
import { openModeGuard } from "./open-mode.ts";
import { rateLimit } from "./rate-limit.ts";
import { groupRoutes } from "./routes/groups.ts";
import { metricsRoutes } from "./routes/metrics.ts";
import { messageRoutes } from "./routes/messages.ts";
import { pushRoutes } from "./routes/push.ts";
import { scheduleRoutes } from "./routes/schedules.ts";
import { sessionUpgrade } from "./routes/session.ts";
import { topicRoutes } from "./routes/topics.ts";
import { transactionRoutes } from "./routes/transactions.ts";
import { MAX_TOKEN_BYTES, mintToken } from "./tokens.ts";

export const app = new Hono<GatewayEnv>();

// First: while open, what only a web page would send is refused before anything else runs.
app.use("*", openModeGuard);

app.use(
  "/v1/*",
  cors({
    origin: (origin, c) => {
      const allowed = (c.env.CORS_ORIGINS ?? "")
        .split(",")
        .map((s: string) => s.trim())
        .filter(Boolean);
      // "*" lets any origin read answers: safe only because no cookies or credentials are involved.
      if (allowed.includes("*")) return "*";
      return allowed.includes(origin) ? origin : null;
    },
    // Tokens travel in Authorization, never cookies: credentials are not allowed.
    allowHeaders: ["Authorization", "Content-Type", "traceparent", "tracestate"],
    exposeHeaders: ["Retry-After"],
    allowMethods: ["GET", "POST", "PUT", "DELETE", "OPTIONS"],
    maxAge: 600,
  }),
);

app.get("/v1/health", (c) => c.json({ ok: true }));
// Public HTML shell; all its data comes from the authenticated API below.
app.route("/console", consoleRoutes);
// Outside /v1: checks the admin token (or METRICS_TOKEN) itself.
app.route("/metrics", metricsRoutes);

app.use("/v1/*", limitHeaders);
// Sessions authenticate for themselves: their token may ride in the subprotocol or the first frame.
app.get("/v1/topics/:topic/queues/:queue/session", sessionUpgrade);
app.use("/v1/*", authenticate);
app.use("/v1/*", rateLimit);

app.post(
  "/v1/tokens",
  async (c, next) => {
    requireAdmin(c);
    if (!c.env.TOKEN_SECRET)
      throw new EdgemqError(
        "NOT_CONFIGURED",
        "TOKEN_SECRET is not set, so no tokens can be minted",
      );
    await next();
  },
  jsonBody(parseMintRequest, { maxBytes: 64 * 1024 }),
  async (c) => {
    const { claims, ttlSeconds } = c.req.valid("json");
    const minted = await mintToken(claims, ttlSeconds, c.env.TOKEN_SECRET!);
    if (minted.token.length > MAX_TOKEN_BYTES)
      throw badRequest("too many or too long patterns: the token would be too large");
    return c.json(minted);
  },
);

app.route("/v1/topics", messageRoutes);
app.route("/v1/topics", topicRoutes);
app.route("/v1/groups", groupRoutes);
app.route("/v1", transactionRoutes);
app.route("/v1/schedules", scheduleRoutes);
app.route("/v1/push", pushRoutes);

app.notFound((c) =>
  c.json(new EdgemqError("NOT_FOUND", `no route for ${c.req.method} ${c.req.path}`).toJSON(), 404),
);

app.onError((err, c) => {
  const known = EdgemqError.from(err);
  if (known) {
    // Binding callers see only the body, HTTP clients also get the header.
    const after = known.details?.retryAfterSeconds;
    if (typeof after === "number") c.header("Retry-After", String(after));
    return c.json(known.toJSON(), known.status as 400);
  }
  console.error("unhandled error", err);
  return c.json(new EdgemqError("INTERNAL", "internal error").toJSON(), 500);
});
