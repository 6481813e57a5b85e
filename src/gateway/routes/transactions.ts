/** Transactions (half messages) and producer groups. */
import { Hono } from "hono";
import { EdgemqError } from "../../protocol/errors.ts";
import { Limits } from "../../protocol/limits.ts";
import { parseTxId } from "../../protocol/ids.ts";
import { parseProducerGroupConfig } from "../../protocol/validate.ts";
import { type GatewayEnv, requireAdmin, requireProducerGroup, requirePublish } from "../auth.ts";
import { nameParam, queryInt, readJson } from "../http.ts";
import { BrokerService, rpc } from "../service.ts";

export const transactionRoutes = new Hono<GatewayEnv>();

transactionRoutes.post("/topics/:topic/transactions", async (c) => {
  const topic = nameParam(c, "topic");
  requirePublish(c, topic);
  const body = await readJson(c, Limits.maxBatchBytes);
  return c.json(
    await new BrokerService(c.env).prepare(topic, body, (pg) => requireProducerGroup(c, pg)),
  );
});

transactionRoutes.get("/topics/:topic/transactions", async (c) => {
  requireAdmin(c);
  const topic = nameParam(c, "topic");
  const limit = queryInt(c, "limit", 1, Limits.maxQueryLimit, Limits.defaultQueryLimit);
  return c.json({ transactions: await new BrokerService(c.env).openTransactions(topic, limit) });
});

for (const end of ["commit", "rollback"] as const) {
  transactionRoutes.post(`/transactions/:txId/${end}`, async (c) => {
    const txId = c.req.param("txId");
    // The txId names its topic: the token must be allowed to publish there,
    // and to use the transaction's producer group (read from its shard).
    requirePublish(c, parseTxId(txId).topic);
    const authorize = c.get("principal").admin
      ? undefined
      : (pg: string) => requireProducerGroup(c, pg);
    return c.json(await new BrokerService(c.env).endTransaction(txId, end === "commit", authorize));
  });
}

transactionRoutes.get("/transactions/:txId", async (c) => {
  const txId = c.req.param("txId");
  requirePublish(c, parseTxId(txId).topic);
  return c.json(
    await new BrokerService(c.env).transaction(txId, (pg) => requireProducerGroup(c, pg)),
  );
});

transactionRoutes.put("/producer-groups/:pg", async (c) => {
  requireAdmin(c);
  const pg = nameParam(c, "pg");
  const input = parseProducerGroupConfig(await readJson(c, Limits.maxSmallBodyBytes, true), {
    local: c.env.EDGEMQ_LOCAL === "1",
  });
  const svc = new BrokerService(c.env);
  return c.json(await rpc(() => svc.registry().putProducerGroup(pg, input)));
});

transactionRoutes.get("/producer-groups/:pg", async (c) => {
  requireAdmin(c);
  const pg = nameParam(c, "pg");
  const svc = new BrokerService(c.env);
  const config = await rpc(() => svc.registry().getProducerGroup(pg));
  if (!config) throw new EdgemqError("NOT_FOUND", `producer group ${pg} not found`);
  return c.json(config);
});

transactionRoutes.get("/producer-groups", async (c) => {
  requireAdmin(c);
  const svc = new BrokerService(c.env);
  return c.json({ producerGroups: await rpc(() => svc.registry().listProducerGroups()) });
});
