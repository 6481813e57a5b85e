/**
 * A Service Binding call's `request(method, path, body)`: the entrypoint
 * turns it into an HTTP request for the very same routes, so it is checked
 * here as the HTTP parser checks a request line before any route sees it.
 */
import { EdgemqError, badRequest } from "../errors.ts";

/** An HTTP method token (RFC 9110). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Methods the Fetch API refuses to build a request with. */
const FORBIDDEN = new Set(["CONNECT", "TRACE", "TRACK"]);

/** Where a binding's path is resolved: any origin would do, it never leaves the Worker. */
const BASE = "http://edgemq.internal";

/**
 * The path (and query) a binding's `path` resolves to, or null when it does
 * not stay under `/v1/`. Checked after the URL parser resolved it, as
 * routing sees it: dot segments (`/v1/../metrics`, also as `%2e%2e` or with
 * backslashes) and `//host` forms would otherwise pass a prefix test and land
 * on another route, or another origin.
 */
export function contractPath(path: unknown): string | null {
  if (typeof path !== "string" || !path.startsWith("/v1/")) return null;
  let url: URL;
  try {
    url = new URL(BASE + path);
  } catch {
    return null;
  }
  if (url.origin !== BASE || !url.pathname.startsWith("/v1/")) return null;
  return url.pathname + url.search;
}

export interface RpcRequest {
  method: string;
  /** Resolved, under `/v1/` (see {@link contractPath}); may carry a query string. */
  path: string;
  /** The JSON text of the body, if one was given. */
  body?: string;
}

/**
 * Checks a binding call: a path under `/v1/` (else NOT_FOUND, as a route
 * outside the API), an HTTP method, no body on GET or HEAD, a body that
 * JSON can carry.
 */
export function parseRpcRequest(method: unknown, rawPath: unknown, body: unknown): RpcRequest {
  const path = contractPath(rawPath);
  if (path === null) throw new EdgemqError("NOT_FOUND", "paths start with /v1/");
  if (typeof method !== "string" || !TOKEN.test(method) || FORBIDDEN.has(method.toUpperCase())) {
    throw badRequest("method must be an HTTP method such as GET, POST, PUT or DELETE");
  }
  if (body === undefined) return { method, path };
  const upper = method.toUpperCase();
  if (upper === "GET" || upper === "HEAD") throw badRequest(`a ${upper} request has no body`);
  let text: string | undefined;
  try {
    text = JSON.stringify(body);
  } catch {
    // A structured-clone value JSON cannot write: a BigInt, or a cycle.
    throw badRequest("body must be a JSON value");
  }
  if (text === undefined) throw badRequest("body must be a JSON value");
  return { method, path, body: text };
}
