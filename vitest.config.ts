import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

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
              bindings: { EDGEMQ_LOCAL: "1", TOKEN_SECRET: "test-secret", ADMIN_TOKEN: "test-admin" },
            },
          }),
        ],
        test: { name: "runtime", include: ["test/runtime/**/*.test.ts"] },
      },
      {
        test: {
          name: "node",
          include: ["test/unit/**/*.test.ts", "test/node/**/*.test.ts"],
          environment: "node",
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
