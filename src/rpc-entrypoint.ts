import { WorkerEntrypoint } from "cloudflare:workers";
import type { Env } from "./env.ts";
import { app } from "./gateway/app.ts";
import { TRUSTED } from "./gateway/auth.ts";
import { EdgemqError } from "./protocol/errors.ts";
import { type RpcRequest, parseRpcRequest } from "./protocol/requests/rpc.ts";
import type { EdgemqRpcApi, PullOptions, ReceiveOptions, RpcAnswer } from "./protocol/rpc.ts";
import type { AckResult, Message, MessageInput, PullResult, SendResult } from "./protocol/types.ts";

/**
 * edgemq for Workers on the same account, through a Service Binding: no HTTP
 * hop, no token (a binding is already a grant). `request` runs the very same
 * routes as HTTP, so validation and errors are identical.
 */
export class EdgemqRpc extends WorkerEntrypoint<Env> implements EdgemqRpcApi {
  /**
   * Runs one contract call. `path` starts with `/v1/` and may carry a query
   * string. Every answer comes back as `{status, body}`, errors included
   * (body: the contract's error shape), so callers see exactly what HTTP
   * clients see; a path outside `/v1/` is answered 404 `NOT_FOUND`, a
   * method that is not one, or a body on a GET, 400 `BAD_REQUEST`.
   */
  async request(method: string, path: string, body?: unknown): Promise<RpcAnswer> {
    let call: RpcRequest;
    try {
      call = parseRpcRequest(method, path, body);
    } catch (e) {
      const known = EdgemqError.from(e);
      if (!known) throw e;
      return { status: known.status, body: known.toJSON() };
    }
    const init: RequestInit = { method: call.method };
    if (call.body !== undefined) {
      init.body = call.body;
      init.headers = { "content-type": "application/json" };
    }
    const res = await app.request(
      `http://edgemq.internal${call.path}`,
      init,
      { ...this.env, [TRUSTED]: true },
      this.ctx,
    );
    // Every /v1 route answers JSON; an empty body (should one ever be) is undefined.
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  }

  /**
   * Session upgrades through the binding's `fetch` (docs/protocol.md): the
   * SDK in a Worker opens its sessions this way, with no token, as every
   * binding call. Anything else is 404 `NOT_FOUND` (use `request`).
   */
  override async fetch(request: Request): Promise<Response> {
    const { pathname } = new URL(request.url);
    if (!/^\/v1\/topics\/[^/]+\/queues\/\d+\/session$/.test(pathname)) {
      return Response.json(
        new EdgemqError("NOT_FOUND", "over a binding, fetch opens sessions only").toJSON(),
        { status: 404 },
      );
    }
    return app.fetch(request, { ...this.env, [TRUSTED]: true }, this.ctx);
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const answer = await this.request(method, path, body);
    if (answer.status >= 400)
      throw (EdgemqError.from(answer.body) ?? new EdgemqError("INTERNAL", "error")).toRpcError();
    return answer.body as T;
  }

  send(
    topic: string,
    messages: MessageInput[],
    queue?: number,
  ): Promise<{ results: SendResult[] }> {
    const q = queue === undefined ? "" : `?queue=${queue}`;
    return this.call("POST", `/v1/topics/${encodeURIComponent(topic)}/messages${q}`, { messages });
  }

  receive(
    group: string,
    topic: string,
    options: ReceiveOptions = {},
  ): Promise<{ messages: Message[] }> {
    return this.call(
      "POST",
      `/v1/groups/${encodeURIComponent(group)}/topics/${encodeURIComponent(topic)}/receive`,
      options,
    );
  }

  ack(group: string, topic: string, receipts: string[]): Promise<{ results: AckResult[] }> {
    return this.call(
      "POST",
      `/v1/groups/${encodeURIComponent(group)}/topics/${encodeURIComponent(topic)}/ack`,
      { receipts },
    );
  }

  nack(
    group: string,
    topic: string,
    receipts: string[],
    delayMs?: number,
  ): Promise<{ results: AckResult[] }> {
    return this.call(
      "POST",
      `/v1/groups/${encodeURIComponent(group)}/topics/${encodeURIComponent(topic)}/nack`,
      {
        receipts,
        ...(delayMs !== undefined && { delayMs }),
      },
    );
  }

  pull(topic: string, queue: number, options: PullOptions = {}): Promise<PullResult> {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(options)) if (v !== undefined) qs.set(k, String(v));
    return this.call(
      "GET",
      `/v1/topics/${encodeURIComponent(topic)}/queues/${queue}/messages?${qs}`,
    );
  }
}
