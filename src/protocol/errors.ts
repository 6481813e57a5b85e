/**
 * The one error model of edgemq. The gateway turns an {@link EdgemqError}
 * into the contract's JSON (`{"error": {"code", "message"}}`), and the SDK
 * turns that JSON back into the same class, so code on both sides can branch
 * on `err.code`.
 */

/** Every error code of the HTTP contract, with its HTTP status. */
export const ErrorStatus = {
  BAD_REQUEST: 400,
  INVALID_NAME: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  TOPIC_NOT_FOUND: 404,
  GROUP_NOT_FOUND: 404,
  MESSAGE_NOT_FOUND: 404,
  TRANSACTION_NOT_FOUND: 404,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  UPGRADE_REQUIRED: 426,
  TRANSACTION_ENDED: 409,
  GROUP_FULL: 409,
  NOT_RECALLABLE: 409,
  RECEIPT_EXPIRED: 410,
  UNSUPPORTED_MEDIA_TYPE: 415,
  MESSAGE_TOO_LARGE: 413,
  BATCH_TOO_LARGE: 413,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  NOT_CONFIGURED: 503,
  UNAVAILABLE: 503,
  QUEUE_FULL: 507,
  STORAGE_FULL: 507,
} as const;

export type ErrorCode = keyof typeof ErrorStatus;

/** The JSON body of every error answer. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; [extra: string]: unknown };
}

/** An error with a contract code; thrown by the broker, the gateway and the SDK alike. */
export class EdgemqError extends Error {
  override readonly name = "EdgemqError";
  readonly code: ErrorCode;
  /** Extra fields carried in the error body, such as a parse `position`. */
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.code = code;
    this.details = details;
  }

  /** The HTTP status this error is answered with. */
  get status(): number {
    return ErrorStatus[this.code];
  }

  /**
   * Durable Object RPC keeps only an error's message, so the code (and any
   * details) ride along in it; {@link EdgemqError.from} reads them back.
   */
  toRpcError(): Error {
    const details = this.details ? `\u0000${JSON.stringify(this.details)}` : "";
    return new Error(`edgemq:${this.code}:${this.message}${details}`);
  }

  toJSON(): ErrorBody {
    return { error: { ...this.details, code: this.code, message: this.message } };
  }

  /**
   * Rebuilds an error from a contract error body, or from an error that crossed
   * a Durable Object RPC boundary (where only `message` survives, so the code
   * travels as a prefix: see `toRpcError`).
   */
  static from(value: unknown): EdgemqError | undefined {
    if (value instanceof EdgemqError) return value;
    if (isErrorBody(value)) {
      const { code, message, ...details } = value.error;
      return new EdgemqError(code, message, Object.keys(details).length ? details : undefined);
    }
    if (value instanceof Error) {
      // workerd's RPC keeps an error's own properties: the code may survive as is.
      const carried = value as Error & { code?: unknown; details?: unknown };
      if (typeof carried.code === "string" && carried.code in ErrorStatus) {
        const details =
          typeof carried.details === "object" && carried.details !== null
            ? carried.details
            : undefined;
        return new EdgemqError(
          carried.code as ErrorCode,
          value.message,
          details as Record<string, unknown> | undefined,
        );
      }
      const m = /^edgemq:([A-Z_]+):(.*)$/s.exec(value.message);
      if (m && m[1]! in ErrorStatus) {
        const [message, json] = m[2]!.split("\u0000");
        return new EdgemqError(m[1] as ErrorCode, message!, json ? JSON.parse(json) : undefined);
      }
    }
    return undefined;
  }
}

/** Narrowing check for the contract's error JSON. */
export function isErrorBody(value: unknown): value is ErrorBody {
  if (typeof value !== "object" || value === null) return false;
  const error = (value as { error?: unknown }).error;
  return (
    typeof error === "object" &&
    error !== null &&
    typeof (error as { code?: unknown }).code === "string" &&
    (error as { code: string }).code in ErrorStatus &&
    typeof (error as { message?: unknown }).message === "string"
  );
}

/** Shorthand for throwing a `BAD_REQUEST`. */
export function badRequest(message: string, details?: Record<string, unknown>): EdgemqError {
  return new EdgemqError("BAD_REQUEST", message, details);
}
