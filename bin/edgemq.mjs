#!/usr/bin/env node
// Launcher of the `edgemq` CLI. The CLI is TypeScript (cli/main.ts) run by
// Node's built-in type stripping: in this process when the running Node
// strips types by default (>= 22.18), else in a child Node with
// --experimental-strip-types (22.6 .. 22.17), or, on an older Node (20 on
// PATH), in the project's own Node from node_modules/.bin/node.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const entry = join(root, "cli", "main.ts");
const [major, minor] = process.versions.node.split(".").map(Number);
const canStrip = major > 22 || (major === 22 && minor >= 6);

if (canStrip && process.features && process.features.typescript) {
  await import(pathToFileURL(entry).href);
} else {
  let node = process.execPath;
  if (!canStrip) {
    // Walk up from the package for node_modules/.bin/node (the `node` devDependency).
    let dir = root;
    let found;
    for (let i = 0; i < 8 && !found; i++) {
      const candidate = join(dir, "node_modules", ".bin", "node");
      if (existsSync(candidate)) found = candidate;
      const up = dirname(dir);
      if (up === dir) break;
      dir = up;
    }
    if (!found) {
      process.stderr.write(
        `edgemq: needs Node >= 22.6 (this is ${process.version}); run \`npm install\` in ${root} or use a newer Node\n`,
      );
      process.exit(3);
    }
    node = found;
  }
  const child = spawn(
    node,
    [
      "--experimental-strip-types",
      "--disable-warning=ExperimentalWarning",
      entry,
      ...process.argv.slice(2),
    ],
    { stdio: "inherit" },
  );
  // A terminal's Ctrl-C reaches the child directly (same process group): don't send it twice.
  process.on("SIGINT", () => {});
  for (const sig of ["SIGTERM", "SIGHUP"]) process.on(sig, () => child.kill(sig));
  child.on("error", (e) => {
    process.stderr.write(`edgemq: could not start ${node}: ${e.message}\n`);
    process.exit(3);
  });
  child.on("exit", (code, signal) => {
    if (signal) process.kill(process.pid, signal);
    else process.exit(code ?? 1);
  });
}
