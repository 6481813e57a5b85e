/** Recurring schedules (admin): create/update, list, describe, delete, run now. */
import { Hono } from "hono";
import { validator } from "hono/validator";
import type { Env } from "../../env.ts";
import { EdgemqError } from "../../protocol/errors.ts";
import {
  checkScheduleName,
  parseScheduleInput,
  parseScheduleList,
} from "../../protocol/requests/schedules.ts";
import { ScheduleLimits } from "../../protocol/schedule.ts";
import { SCHEDULER_NAME } from "../../schedules/scheduler.ts";
import type { GatewayEnv } from "../auth.ts";
import { adminOnly, jsonBody, query } from "../http.ts";
import { rpc } from "../service.ts";

export const scheduleRoutes = new Hono<GatewayEnv>();

function scheduler(env: Env) {
  return env.SCHEDULER.get(env.SCHEDULER.idFromName(SCHEDULER_NAME));
}

function notFound(name: string): EdgemqError {
  return new EdgemqError("NOT_FOUND", `schedule ${name} not found`);
}

/** A path naming a schedule (checked after the admin token). */
const schedulePath = validator("param", (params: Record<string, string>) => ({
  name: checkScheduleName(params.name),
}));

scheduleRoutes.put(
  "/:name",
  adminOnly,
  schedulePath,
  jsonBody((body) => parseScheduleInput(body, Date.now()), {
    maxBytes: ScheduleLimits.maxBodyBytes,
  }),
  async (c) => {
    const { name } = c.req.valid("param");
    const input = c.req.valid("json");
    return c.json(await rpc(() => scheduler(c.env).put(name, input)));
  },
);

scheduleRoutes.get("/", adminOnly, query(parseScheduleList), async (c) => {
  const { after, limit } = c.req.valid("query");
  return c.json(await rpc(() => scheduler(c.env).list(after, limit)));
});

scheduleRoutes.get("/:name", adminOnly, schedulePath, async (c) => {
  const { name } = c.req.valid("param");
  const found = await rpc(() => scheduler(c.env).get(name));
  if (!found) throw notFound(name);
  return c.json(found);
});

scheduleRoutes.delete("/:name", adminOnly, schedulePath, async (c) => {
  const { name } = c.req.valid("param");
  if (!(await rpc(() => scheduler(c.env).delete(name)))) throw notFound(name);
  return c.json({ schedule: name, deleted: true });
});

scheduleRoutes.post("/:name/run", adminOnly, schedulePath, async (c) => {
  const { name } = c.req.valid("param");
  return c.json(await rpc(() => scheduler(c.env).run(name)));
});
