/** Recurring schedules (admin): create/update, list, describe, delete, run now. */
import { Hono } from "hono";
import type { Env } from "../../env.ts";
import { EdgemqError } from "../../protocol/errors.ts";
import { ScheduleLimits, checkScheduleName, parseScheduleInput } from "../../protocol/schedule.ts";
import { SCHEDULER_NAME } from "../../schedules/scheduler.ts";
import { type GatewayEnv, requireAdmin } from "../auth.ts";
import { queryInt, readJson } from "../http.ts";
import { rpc } from "../service.ts";

export const scheduleRoutes = new Hono<GatewayEnv>();

function scheduler(env: Env) {
  return env.SCHEDULER.get(env.SCHEDULER.idFromName(SCHEDULER_NAME));
}

function notFound(name: string): EdgemqError {
  return new EdgemqError("NOT_FOUND", `schedule ${name} not found`);
}

scheduleRoutes.put("/:name", async (c) => {
  requireAdmin(c);
  const name = checkScheduleName(c.req.param("name"));
  const input = parseScheduleInput(await readJson(c, ScheduleLimits.maxBodyBytes), Date.now());
  return c.json(await rpc(() => scheduler(c.env).put(name, input)));
});

scheduleRoutes.get("/", async (c) => {
  requireAdmin(c);
  const limit = queryInt(
    c,
    "limit",
    1,
    ScheduleLimits.maxListLimit,
    ScheduleLimits.defaultListLimit,
  );
  const after = c.req.query("after");
  const cursor = after === undefined || after === "" ? null : checkScheduleName(after);
  return c.json(await rpc(() => scheduler(c.env).list(cursor, limit)));
});

scheduleRoutes.get("/:name", async (c) => {
  requireAdmin(c);
  const name = checkScheduleName(c.req.param("name"));
  const found = await rpc(() => scheduler(c.env).get(name));
  if (!found) throw notFound(name);
  return c.json(found);
});

scheduleRoutes.delete("/:name", async (c) => {
  requireAdmin(c);
  const name = checkScheduleName(c.req.param("name"));
  if (!(await rpc(() => scheduler(c.env).delete(name)))) throw notFound(name);
  return c.json({ schedule: name, deleted: true });
});

scheduleRoutes.post("/:name/run", async (c) => {
  requireAdmin(c);
  const name = checkScheduleName(c.req.param("name"));
  return c.json(await rpc(() => scheduler(c.env).run(name)));
});
