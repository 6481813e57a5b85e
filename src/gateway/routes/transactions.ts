/** Transactions (half messages) and producer groups. */
import { Hono } from "hono";
import { validator } from "hono/validator";
import { EdgemqError } from "../../protocol/errors.ts";
import { parseTxId } from "../../protocol/ids.ts";
import { Limits } from "../../protocol/limits.ts";
import { newMsgId } from "../../protocol/msg-id.ts";
import { parseProducerGroupConfig } from "../../protocol/requests/config.ts";
import { parseLimit } from "../../protocol/requests/query.ts";
import { parsePrepare } from "../../protocol/requests/transactions.ts";
import { type GatewayEnv, requireProducerGroup, requirePublish, senderSpace } from "../auth.ts";
import { adminOnly, jsonBody, names, query } from "../http.ts";
import { BrokerService, rpc } from "../service.ts";

export const transactionRoutes = new Hono<GatewayEnv>();

/** A path naming a transaction: its txId names its topic, which the token must publish to. */
const transactionPath = validator("param", (params: Record<string, string>, c) => {
  const txId = params.txId!;
  const { topic } = parseTxId(txId);
  requirePublish(c, topic);
  return { txId };
});

transactionRoutes.post(
  "/topics/:topic/transactions",
  names(["topic"], (c, p) => requirePublish(c, p.topic)),
  jsonBody((body) => parsePrepare(body, Date.now(), newMsgId), { maxBytes: Limits.maxBatchBytes }),
  async (c) => {
    const { topic } = c.req.valid("param");
    const prepare = c.req.valid("json");
    // The broker will call this producer group's URL about this message: the token must name it.
    requireProducerGroup(c, prepare.producerGroup);
    const sender = senderSpace(c.get("principal"));
    return c.json(await new BrokerService(c.env).prepare(topic, prepare, sender));
  },
);

transactionRoutes.get(
  "/topics/:topic/transactions",
  adminOnly,
  names(["topic"]),
  query(parseLimit),
  async (c) => {
    const { topic } = c.req.valid("param");
    const { limit } = c.req.valid("query");
    return c.json({ transactions: await new BrokerService(c.env).openTransactions(topic, limit) });
  },
);

for (const end of ["commit", "rollback"] as const) {
  transactionRoutes.post(`/transactions/:txId/${end}`, transactionPath, async (c) => {
    const { txId } = c.req.valid("param");
    const sender = senderSpace(c.get("principal"));
    // A scoped token must also name the transaction's producer group (read from its shard).
    const authorize = c.get("principal").admin
      ? undefined
      : (pg: string) => requireProducerGroup(c, pg);
    const svc = new BrokerService(c.env);
    return c.json(await svc.endTransaction(txId, end === "commit", sender, authorize));
  });
}

transactionRoutes.get("/transactions/:txId", transactionPath, async (c) => {
  const { txId } = c.req.valid("param");
  const sender = senderSpace(c.get("principal"));
  return c.json(
    await new BrokerService(c.env).transaction(txId, sender, (pg) => requireProducerGroup(c, pg)),
  );
});

transactionRoutes.put(
  "/producer-groups/:pg",
  adminOnly,
  names(["pg"]),
  jsonBody((body, c) => parseProducerGroupConfig(body, { local: c.env.EDGEMQ_LOCAL === "1" }), {
    maxBytes: Limits.maxSmallBodyBytes,
    optional: true,
  }),
  async (c) => {
    const { pg } = c.req.valid("param");
    const svc = new BrokerService(c.env);
    return c.json(await rpc(() => svc.registry().putProducerGroup(pg, c.req.valid("json"))));
  },
);

transactionRoutes.get("/producer-groups/:pg", adminOnly, names(["pg"]), async (c) => {
  const { pg } = c.req.valid("param");
  const svc = new BrokerService(c.env);
  const config = await rpc(() => svc.registry().getProducerGroup(pg));
  if (!config) throw new EdgemqError("NOT_FOUND", `producer group ${pg} not found`);
  return c.json(config);
});

transactionRoutes.get("/producer-groups", adminOnly, async (c) => {
  const svc = new BrokerService(c.env);
  return c.json({ producerGroups: await rpc(() => svc.registry().listProducerGroups()) });
});
