import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

/**
 * The plugin runs the Worker under test (wrangler.toml's "edgemq") renamed to
 * `vitest-plugin-runner-<project name>`; an auxiliary Worker's binding to it
 * must use that name.
 */
const RUNNER_NAME = "vitest-plugin-runner-runtime";

/**
 * Two projects: `runtime` runs inside workerd (the real Durable Objects and
 * SQLite), `node` runs pure unit tests and tests that start the real local
 * server and speak HTTP to it (and drive Chromium for browser behaviour).
 */
export default defineConfig({
  test: {
    projects: [
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: {
                EDGEMQ_LOCAL: "1",
                TOKEN_SECRET: "test-secret",
                ADMIN_TOKEN: "test-admin",
                // Every test file refuses dozens of forged tokens from one address;
                // test/runtime/auth-failures.test.ts sets its own, small, budget.
                AUTH_FAILURES_PER_MINUTE: "100000",
              },
              // The tests reach the second Worker through this binding.
              serviceBindings: { BINDING_WORKER: "binding-worker" },
              workers: [
                {
                  // A second Worker that uses the SDK over a Service Binding to
                  // the broker's EdgemqRpc entrypoint (test/runtime/service-binding.test.ts).
                  name: "binding-worker",
                  modules: true,
                  scriptPath: "./.edgemq-build/binding-worker/worker.js", // built by the globalSetup
                  compatibilityDate: "2026-11-01",
                  serviceBindings: { EDGEMQ: { name: RUNNER_NAME, entrypoint: "EdgemqRpc" } },
                },
              ],
            },
          }),
        ],
        test: {
          name: "runtime",
          include: ["test/runtime/**/*.test.ts"],
          globalSetup: [
            "test/fixtures/console/global-setup.ts",
            "test/fixtures/binding-worker/global-setup.ts",
            "test/fixtures/push-endpoint/global-setup.ts",
          ],
        },
      },
      {
        test: {
          name: "node",
          include: [
            "test/unit/**/*.test.ts",
            "test/node/**/*.test.ts",
            "test/browser/**/*.test.ts",
          ],
          environment: "node",
          globalSetup: ["test/fixtures/console/global-setup.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
