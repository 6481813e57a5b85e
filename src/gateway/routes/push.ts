/** Push subscriptions (admin): create/update, list, describe with stats, delete. */
import { Hono } from "hono";
import { PushLimits } from "../../protocol/push.ts";
import { parsePushInput } from "../../protocol/requests/push.ts";
import type { GatewayEnv } from "../auth.ts";
import { adminOnly, jsonBody, names } from "../http.ts";
import { PushService } from "../push-service.ts";
import { BrokerService } from "../service.ts";

export const pushRoutes = new Hono<GatewayEnv>();

const push = (env: GatewayEnv["Bindings"]) => new PushService(new BrokerService(env));

pushRoutes.put(
  "/:name",
  adminOnly,
  names(["name"]),
  jsonBody((body, c) => parsePushInput(body, { local: c.env.EDGEMQ_LOCAL === "1" }), {
    maxBytes: PushLimits.maxBodyBytes,
  }),
  async (c) => {
    const { name } = c.req.valid("param");
    return c.json(await push(c.env).put(name, c.req.valid("json")));
  },
);

pushRoutes.get("/", adminOnly, async (c) => c.json({ push: await push(c.env).list() }));

pushRoutes.get("/:name", adminOnly, names(["name"]), async (c) => {
  const { name } = c.req.valid("param");
  return c.json(await push(c.env).get(name));
});

pushRoutes.delete("/:name", adminOnly, names(["name"]), async (c) => {
  const { name } = c.req.valid("param");
  await push(c.env).delete(name);
  return c.json({ push: name, deleted: true });
});
