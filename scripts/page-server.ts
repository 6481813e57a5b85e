/**
 * Serves a browser page that uses the SDK, for the browser tests and the
 * examples: one HTML document at `/` and an esbuild bundle of a TypeScript
 * entry at `/app.js` (the entry may import `client/index.ts` directly), on
 * 127.0.0.1 only.
 *
 *   const page = await startPageServer({ entry: "examples/browser-producer/main.ts", html });
 *   // open `${page.url}/` in a browser; `<script type="module" src="/app.js">` loads the bundle
 *   await page.close();
 *
 * The bundle is built once, at start, in memory.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { REPO_ROOT } from "./local-server.ts";

/** Answers one request the page server does not know itself (e.g. a token endpoint). */
export type PageRoute = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export interface PageServerOptions {
  /** The page's script: a TypeScript (or JS) module, bundled for browsers. */
  entry: string;
  /** The HTML served at `/` (and `/index.html`). */
  html: string;
  /** Port on 127.0.0.1; 0 (the default) picks a free one. */
  port?: number;
  /** More paths (exact match, any method): a backend for the page. */
  routes?: Record<string, PageRoute>;
}

export interface PageServer {
  /** `http://127.0.0.1:<port>` (no trailing slash): the page's origin. */
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Bundles `entry` into one ES module for browsers (sourcemap inline, for readable stacks). */
export async function bundlePage(entry: string): Promise<string> {
  const esbuild = await import("esbuild");
  const result = await esbuild.build({
    entryPoints: [path.resolve(REPO_ROOT, entry)],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    sourcemap: "inline",
    write: false,
    logLevel: "silent",
    absWorkingDir: REPO_ROOT,
  });
  const out = result.outputFiles[0];
  if (!out) throw new Error(`esbuild produced nothing for ${entry}`);
  return out.text;
}

export async function startPageServer(opts: PageServerOptions): Promise<PageServer> {
  const script = await bundlePage(opts.entry);
  const server = createServer((req, res) => {
    const pathname = new URL(req.url ?? "/", "http://page").pathname;
    // Never cached: a reload must see the same bytes from this server, not a cache.
    res.setHeader("cache-control", "no-store");
    const route = opts.routes?.[pathname];
    if (route) {
      Promise.resolve(route(req, res)).catch((e: unknown) => {
        if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
        res.end(String(e));
      });
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405).end();
    } else if (pathname === "/" || pathname === "/index.html") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(opts.html);
    } else if (pathname === "/app.js") {
      res.writeHead(200, { "content-type": "text/javascript; charset=utf-8" }).end(script);
    } else {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
