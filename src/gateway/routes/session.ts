/**
 * The session upgrade (docs/protocol.md): `GET /v1/topics/{t}/queues/{q}/session`
 * with `Upgrade: websocket`. The gateway authenticates (the token rides in
 * `Sec-WebSocket-Protocol` as `edgemq.bearer.<base64url>`, since browsers
 * cannot set headers; or in `Authorization`; or, with neither, in the first
 * frame, checked by the shard), checks the scopes, and hands the socket to
 * the queue's shard, which accepts it with the hibernation API. From then on
 * the gateway is out of the data path.
 *
 * A refused upgrade that speaks the protocol still completes the handshake,
 * gets one `error` frame and is closed with the code for its error: a
 * browser sees nothing of a failed handshake but "1006", so this is how it
 * learns why.
 */
import type { Context } from "hono";
import {
  SESSION_URL,
  HANDOFF_HEADER,
  type SessionHandoff,
} from "../../broker/sessions/attachment.ts";
import { EdgemqError, badRequest } from "../../protocol/errors.ts";
import {
  SESSION_PROTOCOL,
  closeCodeFor,
  errorFrame,
  offersSessionProtocol,
  tokenFromProtocols,
} from "../../protocol/session.ts";
import { checkName, parseQueueParam } from "../../protocol/requests/fields.ts";
import {
  type GatewayEnv,
  type Principal,
  TRUSTED,
  bearerOf,
  gatedPrincipal,
  principalFor,
  sessionGrant,
} from "../auth.ts";
import { rateLimit } from "../rate-limit.ts";
import { BrokerService } from "../service.ts";

/** Answers a session upgrade: the shard's 101, or a refusal (see the module notes). */
export async function sessionUpgrade(c: Context<GatewayEnv>): Promise<Response> {
  const req = c.req.raw;
  if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    throw new EdgemqError(
      "UPGRADE_REQUIRED",
      `a session is a WebSocket: GET with Upgrade: websocket and the subprotocol ${SESSION_PROTOCOL}`,
    );
  }
  const protocols = req.headers.get("sec-websocket-protocol");
  if (!offersSessionProtocol(protocols)) {
    // Not speaking this protocol (or another version of it): a plain HTTP error.
    throw badRequest(`offer the WebSocket subprotocol ${SESSION_PROTOCOL}`);
  }
  try {
    return await handOver(c, protocols);
  } catch (e) {
    const err = EdgemqError.from(e);
    if (!err) console.error("edgemq: session upgrade failed", e);
    return refuse(err ?? new EdgemqError("INTERNAL", "internal error"));
  }
}

async function handOver(c: Context<GatewayEnv>, protocols: string | null): Promise<Response> {
  const topic = checkName(c.req.param("topic"), "topic");
  const queue = parseQueueParam(c.req.param("queue"));
  const groupParam = c.req.query("group");
  const group = groupParam === undefined ? null : checkName(groupParam, "group");
  for (const k of new URL(c.req.url).searchParams.keys()) {
    if (k !== "group")
      throw badRequest(`unknown parameter ${k.slice(0, 64)} (tokens never go in the URL)`);
  }
  const env = c.env;
  let principal: Principal | null;
  if (env[TRUSTED]) principal = { admin: true, sub: "service-binding" };
  else {
    const token = tokenFromProtocols(protocols) ?? bearerOf(c.req.header("authorization"));
    const open = !env.ADMIN_TOKEN && !env.TOKEN_SECRET;
    // No token at all: the client authenticates with its first frame (checked by the shard).
    // A token given here passes the per-address gate of failed authentication.
    principal =
      token === undefined && !open
        ? null
        : open
          ? await principalFor(token, env)
          : await gatedPrincipal(c, () => token);
  }
  if (principal) {
    c.set("principal", principal);
    await rateLimit(c, async () => {});
  }
  const grant = principal ? sessionGrant(principal, topic, group) : null;
  const svc = new BrokerService(env);
  const config = await svc.topic(topic);
  if (queue >= config.queues) {
    throw new EdgemqError("NOT_FOUND", `topic ${topic} has queues 0 to ${config.queues - 1}`);
  }
  const groupConfig = grant?.consume && group !== null ? await svc.subscribe(group, topic) : null;
  const handoff: SessionHandoff = { group, grant, groupConfig };
  const res = await svc.shard(topic, queue).fetch(SESSION_URL, {
    headers: { Upgrade: "websocket", [HANDOFF_HEADER]: JSON.stringify(handoff) },
  });
  if (res.status !== 101 || !res.webSocket) {
    const body = await res.json().catch(() => null);
    throw (
      EdgemqError.from(body) ?? new EdgemqError("UNAVAILABLE", `the shard refused: ${res.status}`)
    );
  }
  return new Response(null, {
    status: 101,
    webSocket: res.webSocket,
    headers: { "Sec-WebSocket-Protocol": SESSION_PROTOCOL },
  });
}

/** Completes the handshake, says why in an error frame, and closes with the error's code. */
function refuse(err: EdgemqError): Response {
  const pair = new WebSocketPair();
  const ws = pair[1];
  ws.accept();
  ws.send(errorFrame(err));
  ws.close(closeCodeFor(err.code), err.message.slice(0, 120));
  return new Response(null, {
    status: 101,
    webSocket: pair[0],
    headers: { "Sec-WebSocket-Protocol": SESSION_PROTOCOL },
  });
}
