/**
 * Receipts and transaction ids: opaque to users, but addresses to the
 * broker. Each names its topic (and group), so the gateway routes it straight
 * to its shard and checks it against the request's path and the token's
 * scope before any Durable Object is touched.
 */
import { EdgemqError } from "./errors.ts";

const NAME = "[A-Za-z0-9_-]{1,127}";
const RECEIPT = new RegExp(
  `^r1\\.(${NAME})\\.(${NAME})\\.(\\d{1,3})\\.(\\d{1,16})\\.([A-Za-z0-9_-]{1,32})$`,
);
/** A txId before they carried a secret: only those of transactions opened then still name one. */
const TXID_V1 = new RegExp(`^t1\\.(${NAME})\\.(\\d{1,3})\\.(\\d{1,16})$`);
const TXID = new RegExp(`^t2\\.(${NAME})\\.(\\d{1,3})\\.(\\d{1,16})\\.([A-Za-z0-9_-]{22,64})$`);

export interface ReceiptParts {
  topic: string;
  group: string;
  queue: number;
  offset: number;
  handle: string;
}

export function encodeReceipt(p: ReceiptParts): string {
  return `r1.${p.topic}.${p.group}.${p.queue}.${p.offset}.${p.handle}`;
}

/** Parses a receipt; a malformed one is BAD_REQUEST. */
export function parseReceipt(receipt: unknown): ReceiptParts {
  const m = typeof receipt === "string" ? RECEIPT.exec(receipt) : null;
  if (!m) throw new EdgemqError("BAD_REQUEST", "malformed receipt");
  return { topic: m[1]!, group: m[2]!, queue: Number(m[3]), offset: Number(m[4]), handle: m[5]! };
}

/**
 * A transaction id: the half message's address (topic, queue, id inside the
 * shard) and `secret`, random bits the shard keeps with it. The address alone
 * is guessable (ids grow with the clock), so the shard ends or shows a
 * transaction only to a caller that also presents its secret: a txId is a
 * capability, not a name. `secret` is null only for transactions opened before
 * txIds had one (their `t1.` id is all they ever had).
 */
export interface TxIdParts {
  topic: string;
  queue: number;
  id: number;
  secret: string | null;
}

/** Random bytes of a txId's secret: 128 bits (22 base64url characters). */
export const TX_SECRET_BYTES = 16;

/** A new txId secret. */
export function newTxSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(TX_SECRET_BYTES));
  return btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
}

export function encodeTxId(p: TxIdParts): string {
  return p.secret === null
    ? `t1.${p.topic}.${p.queue}.${p.id}`
    : `t2.${p.topic}.${p.queue}.${p.id}.${p.secret}`;
}

/** Parses a transaction id; a malformed one is TRANSACTION_NOT_FOUND (it cannot name one). */
export function parseTxId(txId: string): TxIdParts {
  const m = TXID.exec(txId);
  if (m) return { topic: m[1]!, queue: Number(m[2]), id: Number(m[3]), secret: m[4]! };
  const v1 = TXID_V1.exec(txId);
  if (!v1) throw new EdgemqError("TRANSACTION_NOT_FOUND", "malformed transaction id");
  return { topic: v1[1]!, queue: Number(v1[2]), id: Number(v1[3]), secret: null };
}
