/**
 * Calls to the broker's JSON API (`/v1/...`, the contract of api.md) with the
 * admin token the user signed in with. The token lives in this tab's
 * sessionStorage only: never localStorage or a cookie, so it ends with the tab
 * and no other origin's request carries it.
 */

const TOKEN_KEY = "edgemq.token";

/** The signed-in token, or null. */
export function getToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function clearToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** An API error: the contract's `{"error":{"code","message"}}`, or `UNAVAILABLE` when nothing answered. */
export class ApiError extends Error {
  /** The HTTP status; 0 when nothing answered. */
  readonly status: number;
  /** A code of the contract's error table (or `HTTP_<status>` for a non-JSON answer). */
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let onUnauthorized: (message: string) => void = () => {};

/** What to do when the broker refuses the token (401): the shell signs out. */
export function setUnauthorizedHandler(handler: (message: string) => void): void {
  onUnauthorized = handler;
}

export type Method = "GET" | "PUT" | "POST" | "DELETE";

/**
 * One API call. Resolves with the parsed JSON body (typed by the caller after
 * the contract); rejects with an {@link ApiError}.
 */
export async function api<T>(method: Method, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  const token = getToken();
  if (token) headers.authorization = `Bearer ${token}`;
  const init: RequestInit = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res: Response;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, "UNAVAILABLE", `the broker did not answer (${(e as Error).message})`);
  }
  const text = await res.text();
  let data: unknown;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    data = undefined;
  }
  if (!res.ok) {
    const err = (data as { error?: { code: string; message: string } } | undefined)?.error;
    const e = new ApiError(
      res.status,
      err ? err.code : `HTTP_${res.status}`,
      err ? err.message : `HTTP ${res.status}`,
    );
    if (res.status === 401) onUnauthorized(`The broker refused the token (${e.message}).`);
    throw e;
  }
  return data as T;
}

/** A path segment: names are encoded, never spliced in raw. */
export const enc = encodeURIComponent;
