/**
 * Signatures of the requests the broker makes to other people's URLs
 * (transaction check-backs, push deliveries): one scheme, shared by the
 * broker that signs and by the SDK handlers that verify (api.md, "Outbound
 * requests are signed per receiver, with a timestamp").
 *
 *   X-Edgemq-Timestamp: 1764000000000
 *   X-Edgemq-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + rawBody)>[,v1=…]
 *
 * Each receiver has its own secret, so a receiver can never forge anything
 * for another one, and none of them holds `TOKEN_SECRET` (which mints
 * tokens). The timestamp is inside the MAC, so a captured request is good for
 * a few minutes only. While a rotation overlaps, the broker sends one `v1=`
 * per valid secret and a receiver accepts any that matches one of its own.
 *
 * WebCrypto only: this module runs in the Worker, in browsers, Node and Deno.
 */

/** Header names, lower case (as `Headers` hands them out). */
export const TIMESTAMP_HEADER = "x-edgemq-timestamp";
export const SIGNATURE_HEADER = "x-edgemq-signature";

/** The only signature version so far. */
const VERSION = "v1";

/** How far a timestamp may be from the receiver's clock (api.md: 5 minutes). */
export const SIGNATURE_TOLERANCE_MS = 5 * 60_000;

/** Random bytes in a signing secret (api.md: at least 32). */
export const SIGNING_SECRET_BYTES = 32;

/** `v1=` values read from one header: more than any rotation sends, few enough to verify cheaply. */
const MAX_SIGNATURES = 8;

const encoder = new TextEncoder();

function base64url(bytes: Uint8Array): string {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function hex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

function fromHex(text: string): Uint8Array<ArrayBuffer> | undefined {
  if (!/^[0-9a-fA-F]{64}$/.test(text)) return undefined;
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = parseInt(text.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/**
 * A new signing secret: {@link SIGNING_SECRET_BYTES} bytes from the CSPRNG,
 * base64url without padding (43 characters). Its UTF-8 text, as shown, is the
 * HMAC key: receivers in any language use the string as given.
 */
export function newSigningSecret(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(SIGNING_SECRET_BYTES)));
}

function hmacKey(secret: string, usage: "sign" | "verify"): Promise<CryptoKey> {
  return crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    [usage],
  );
}

/** What is MACed: the timestamp's digits, a dot, then the raw body bytes. */
function signedBytes(timestamp: string, body: string | Uint8Array): Uint8Array<ArrayBuffer> {
  const head = encoder.encode(`${timestamp}.`);
  const tail = typeof body === "string" ? encoder.encode(body) : body;
  const out = new Uint8Array(head.byteLength + tail.byteLength);
  out.set(head, 0);
  out.set(tail, head.byteLength);
  return out;
}

/**
 * The two headers that sign `body` at `now` with every secret in `secrets`
 * (the current one first, then one still valid after a rotation). Throws
 * when `secrets` is empty: an unsigned outbound request is never sent.
 */
export async function signatureHeaders(
  body: string,
  secrets: readonly string[],
  now: number = Date.now(),
): Promise<Record<typeof TIMESTAMP_HEADER | typeof SIGNATURE_HEADER, string>> {
  if (secrets.length === 0) throw new Error("no signing secret");
  const timestamp = String(Math.floor(now));
  const data = signedBytes(timestamp, body);
  const values = await Promise.all(
    secrets.map(async (s) => {
      const mac = await crypto.subtle.sign("HMAC", await hmacKey(s, "sign"), data);
      return `${VERSION}=${hex(new Uint8Array(mac))}`;
    }),
  );
  return { [TIMESTAMP_HEADER]: timestamp, [SIGNATURE_HEADER]: values.join(",") };
}

/** Why a signed request was refused (or `ok`). */
export type SignatureCheck =
  | { ok: true }
  | { ok: false; reason: "missing" | "malformed" | "stale" | "mismatch" };

export interface VerifyOptions {
  /** The receiver's secret, or several while it rotates (any may match). */
  secrets: readonly string[];
  /** The receiver's clock; default `Date.now()`. */
  now?: number;
  /** Largest accepted distance between `now` and the timestamp; default 5 minutes. */
  toleranceMs?: number;
}

/**
 * Checks the signature headers of a request against its raw body: the
 * timestamp must be within the tolerance of `now`, and one `v1=` value must
 * be the MAC of `timestamp.body` under one of `secrets`. Comparisons go
 * through `crypto.subtle.verify`, which compares in constant time, so the
 * answer's timing says nothing about the right signature.
 */
export async function verifySignature(
  headers: { get(name: string): string | null },
  body: string | Uint8Array,
  options: VerifyOptions,
): Promise<SignatureCheck> {
  const timestamp = headers.get(TIMESTAMP_HEADER)?.trim();
  const header = headers.get(SIGNATURE_HEADER)?.trim();
  if (!timestamp || !header) return { ok: false, reason: "missing" };
  if (!/^\d{1,16}$/.test(timestamp)) return { ok: false, reason: "malformed" };
  const now = options.now ?? Date.now();
  const tolerance = options.toleranceMs ?? SIGNATURE_TOLERANCE_MS;
  if (Math.abs(now - Number(timestamp)) > tolerance) return { ok: false, reason: "stale" };
  const signatures: Uint8Array<ArrayBuffer>[] = [];
  for (const part of header.split(",").slice(0, MAX_SIGNATURES)) {
    const [version, value] = part.trim().split("=", 2);
    // Unknown versions are skipped, so a later scheme can be sent beside v1.
    if (version !== VERSION || value === undefined) continue;
    const bytes = fromHex(value);
    if (bytes) signatures.push(bytes);
  }
  if (signatures.length === 0) return { ok: false, reason: "malformed" };
  if (options.secrets.length === 0) return { ok: false, reason: "mismatch" };
  const data = signedBytes(timestamp, body);
  for (const secret of options.secrets) {
    const key = await hmacKey(secret, "verify");
    for (const sig of signatures) {
      if (await crypto.subtle.verify("HMAC", key, sig, data)) return { ok: true };
    }
  }
  return { ok: false, reason: "mismatch" };
}

/** Hosts that name this machine: `localhost` (and `*.localhost`), 127.0.0.0/8 and `[::1]`. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/\.$/, "");
  if (h === "localhost" || h.endsWith(".localhost")) return true;
  if (h === "[::1]" || h === "::1") return true;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * Whether the broker may send to `url`: `https:` always; `http:` only to a
 * loopback host, or anywhere when the broker runs locally (`npm start`), since
 * a deployed broker would otherwise send signed bodies in clear text.
 */
export function outboundUrlAllowed(url: URL, local: boolean): boolean {
  if (url.protocol === "https:") return true;
  if (url.protocol !== "http:") return false;
  return local || isLoopbackHost(url.hostname);
}
