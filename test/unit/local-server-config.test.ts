/**
 * The local server's workerd config comes from wrangler.toml: every Durable
 * Object namespace declared there is served locally, SQLite-backed, under the
 * uniqueKey that names its directory of data (which must never change).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  REPO_ROOT,
  durableObjectBindings,
  readWranglerToml,
  workerdConfig,
} from "../../scripts/local-server.ts";

describe("the local server's Durable Object namespaces", () => {
  it("are wrangler.toml's bindings, each class created by a migration", () => {
    const info = readWranglerToml();
    expect(info.durableObjects).toEqual([
      { binding: "SHARDS", className: "QueueShard" },
      { binding: "REGISTRY", className: "TopicRegistry" },
      { binding: "SCHEDULER", className: "Scheduler" },
    ]);
    const toml = readFileSync(join(REPO_ROOT, "wrangler.toml"), "utf8");
    const created = [...toml.matchAll(/new_sqlite_classes\s*=\s*\[([^\]]*)\]/g)].flatMap((m) =>
      [...m[1]!.matchAll(/"([^"]+)"/g)].map((c) => c[1]),
    );
    for (const ns of info.durableObjects) expect(created).toContain(ns.className);
  });

  it("are bound and declared with SQL, under the uniqueKeys of the data already on disk", () => {
    const config = workerdConfig({
      bundleFile: "worker.js",
      dataDir: "/tmp/x",
      port: 0,
      compatibilityDate: "2026-11-01",
      durableObjects: readWranglerToml().durableObjects,
    });
    for (const [binding, className] of [
      ["SHARDS", "QueueShard"],
      ["REGISTRY", "TopicRegistry"],
      ["SCHEDULER", "Scheduler"],
    ]) {
      expect(config).toContain(`(name = "${binding}", durableObjectNamespace = "${className}")`);
      expect(config).toContain(
        `(className = "${className}", uniqueKey = "edgemq-${className}", enableSql = true)`,
      );
    }
  });

  it("refuses a binding without a class", () => {
    expect(() =>
      durableObjectBindings(
        '[[durable_objects.bindings]]\nname = "X"\n\n[vars]\nclass_name = "Y"\n',
      ),
    ).toThrow(/lacks name or class_name/);
  });
});
