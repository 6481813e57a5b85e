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
const TXID = new RegExp(`^t1\\.(${NAME})\\.(\\d{1,3})\\.(\\d{1,16})$`);

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

export interface TxIdParts {
  topic: string;
  queue: number;
  id: number;
}

export function encodeTxId(p: TxIdParts): string {
  return `t1.${p.topic}.${p.queue}.${p.id}`;
}

/** Parses a transaction id; a malformed one is TRANSACTION_NOT_FOUND (it cannot name one). */
export function parseTxId(txId: string): TxIdParts {
  const m = TXID.exec(txId);
  if (!m) throw new EdgemqError("TRANSACTION_NOT_FOUND", "malformed transaction id");
  return { topic: m[1]!, queue: Number(m[2]), id: Number(m[3]) };
}
