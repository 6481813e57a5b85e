/**
 * Receiving the broker's signed requests (transaction check-backs, push
 * deliveries): one verification step that every SDK handler runs before it
 * trusts a body. The scheme itself is in src/protocol/signing.ts, shared with
 * the broker that signs.
 */
import {
  SIGNATURE_TOLERANCE_MS,
  type SignatureCheck,
  verifySignature,
} from "../src/protocol/signing.ts";

/** How a handler verifies the broker's signature. */
export interface SignatureOptions {
  /**
   * The receiver's `signingSecret` (from `PUT /v1/producer-groups/{pg}` or
   * `PUT /v1/push/{name}`). While you switch to a rotated secret, give both:
   * a request signed with either is accepted.
   */
  secret: string | readonly string[];
  /** Largest accepted distance between the request's timestamp and this clock, in ms. Default 5 minutes. */
  toleranceMs?: number;
  /** This receiver's clock (for tests). Default `Date.now`. */
  now?: () => number;
}

/** A request that passed verification, with its raw body; or the answer to give instead. */
export type SignedRequest =
  | { ok: true; raw: Uint8Array; text: string }
  | { ok: false; response: Response };

/** A JSON answer in the contract's shape. */
export function jsonResponse(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

const REASONS: Record<Exclude<SignatureCheck, { ok: true }>["reason"], string> = {
  missing: "missing X-Edgemq-Timestamp or X-Edgemq-Signature",
  malformed: "malformed X-Edgemq-Timestamp or X-Edgemq-Signature",
  stale: "X-Edgemq-Timestamp is too far from this receiver's clock (replayed or delayed)",
  mismatch: "X-Edgemq-Signature does not match this receiver's secret",
};

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/**
 * Makes the verifier of a handler: it reads the raw body of a POST and checks
 * `X-Edgemq-Timestamp` and `X-Edgemq-Signature` against the secret(s). A
 * method other than POST is answered 405; a missing, stale or wrong signature
 * 401 (`UNAUTHORIZED`, with the reason); a body that is not UTF-8 400. Secrets
 * are checked when the handler is made, so a misconfiguration fails at start.
 */
export function signatureVerifier(
  options: SignatureOptions,
): (request: Request) => Promise<SignedRequest> {
  const secrets = typeof options.secret === "string" ? [options.secret] : [...options.secret];
  if (secrets.length === 0 || secrets.some((s) => typeof s !== "string" || s.length === 0)) {
    throw new TypeError("secret must be the receiver's signingSecret (a non-empty string)");
  }
  const toleranceMs = options.toleranceMs ?? SIGNATURE_TOLERANCE_MS;
  const clock = options.now ?? Date.now;
  return async (request) => {
    if (request.method !== "POST") {
      return {
        ok: false,
        response: jsonResponse(405, { error: { code: "METHOD_NOT_ALLOWED", message: "use POST" } }),
      };
    }
    const raw = new Uint8Array(await request.arrayBuffer());
    const verdict = await verifySignature(request.headers, raw, {
      secrets,
      now: clock(),
      toleranceMs,
    });
    if (!verdict.ok) {
      return {
        ok: false,
        response: jsonResponse(401, {
          error: { code: "UNAUTHORIZED", message: REASONS[verdict.reason] },
        }),
      };
    }
    let text: string;
    try {
      text = strictUtf8.decode(raw);
    } catch {
      return {
        ok: false,
        response: jsonResponse(400, {
          error: { code: "BAD_REQUEST", message: "body is not UTF-8" },
        }),
      };
    }
    return { ok: true, raw, text };
  };
}
