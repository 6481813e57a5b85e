/**
 * `edgemq`: the command-line admin of edgemq (RocketMQ's mqadmin plus a
 * console consumer), over the HTTP contract through the SDK in client/.
 *
 * Exit codes: 0 done; 1 the broker refused (its error code is printed on
 * stderr); 2 a usage mistake; 3 the broker could not be reached.
 * Run through bin/edgemq.mjs, which picks a Node that strips TypeScript.
 */
import { EdgemqError } from "../client/index.ts";
import { producerGroupCommands, tokenCommand, txCommands } from "./commands/admin.ts";
import { groupCommands, offsetCommands } from "./commands/group.ts";
import { dlqCommands, queryCommand } from "./commands/query.ts";
import { pushCommands } from "./commands/push.ts";
import { scheduleCommands } from "./commands/schedule.ts";
import { sendCommand } from "./commands/send.ts";
import { tailCommand } from "./commands/tail.ts";
import { topicCommands } from "./commands/topic.ts";
import {
  type Command,
  Context,
  DEFAULT_ENDPOINT,
  GLOBAL_OPTIONS,
  parseCommandArgs,
  UsageError,
} from "./context.ts";

export const COMMANDS: Command[] = [
  ...topicCommands,
  sendCommand,
  tailCommand,
  ...groupCommands,
  ...offsetCommands,
  queryCommand,
  ...dlqCommands,
  tokenCommand,
  ...txCommands,
  ...producerGroupCommands,
  ...scheduleCommands,
  ...pushCommands,
];

export const EXIT = { ok: 0, refused: 1, usage: 2, unreachable: 3 } as const;

const GLOBAL_HELP = [
  "-e, --endpoint URL   broker URL (env EDGEMQ_ENDPOINT; default " + DEFAULT_ENDPOINT + ")",
  "-t, --token TOKEN    bearer token (env EDGEMQ_TOKEN)",
  "    --json           machine-readable output on stdout (errors as JSON on stderr)",
  "-h, --help           this help",
];

function overview(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    "usage: edgemq <command> [arguments] [options]",
    "",
    "commands:",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    "options of every command:",
    ...GLOBAL_HELP.map((l) => `  ${l}`),
    "",
    "exit codes: 0 ok, 1 the broker refused (code on stderr), 2 usage, 3 broker unreachable.",
    "`edgemq <command> --help` shows a command's options.",
  ].join("\n");
}

function commandHelp(c: Command): string {
  return [
    `usage: edgemq ${c.name}${c.usage ? ` ${c.usage}` : ""}`,
    "",
    `${c.summary}.`,
    ...(c.help?.length ? ["", "options:", ...c.help.map((l) => `  ${l}`)] : []),
    "",
    "options of every command:",
    ...GLOBAL_HELP.map((l) => `  ${l}`),
  ].join("\n");
}

/** Global options that take a value (their value is not a command word). */
const VALUED = new Set(
  Object.entries(GLOBAL_OPTIONS).flatMap(([name, o]) =>
    o.type === "string" ? [`--${name}`, ...("short" in o ? [`-${o.short}`] : [])] : [],
  ),
);

/** Finds the command named by the leading words of `argv` (options may come first). */
function findCommand(argv: string[]): {
  command: Command | undefined;
  rest: string[];
  words: string[];
} {
  const words: { word: string; index: number }[] = [];
  for (let i = 0; i < argv.length && words.length < 2; i++) {
    const a = argv[i]!;
    if (a === "--") break;
    if (a.startsWith("-")) {
      if (VALUED.has(a)) i++;
      continue;
    }
    words.push({ word: a, index: i });
  }
  for (const n of [2, 1]) {
    if (words.length < n) continue;
    const name = words
      .slice(0, n)
      .map((w) => w.word)
      .join(" ");
    const command = COMMANDS.find((c) => c.name === name);
    if (command) {
      const drop = new Set(words.slice(0, n).map((w) => w.index));
      return {
        command,
        rest: argv.filter((_, i) => !drop.has(i)),
        words: words.map((w) => w.word),
      };
    }
  }
  return { command: undefined, rest: argv, words: words.map((w) => w.word) };
}

function argvEndpoint(argv: string[], env: NodeJS.ProcessEnv): string {
  const i = argv.findIndex((a) => a === "--endpoint" || a === "-e");
  const inline = argv.find((a) => a.startsWith("--endpoint="));
  return (
    (i >= 0 ? argv[i + 1] : inline?.slice("--endpoint=".length)) ??
    env.EDGEMQ_ENDPOINT ??
    DEFAULT_ENDPOINT
  );
}

function printError(json: boolean, code: string, message: string, extra: string[] = []): void {
  if (json) process.stderr.write(`${JSON.stringify({ error: { code, message } })}\n`);
  else process.stderr.write([`edgemq: ${code}: ${message}`, ...extra].join("\n") + "\n");
}

/** Runs the CLI with `argv` (without node and the script); resolves the exit code. */
export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const json = argv.includes("--json");
  const { command, rest, words } = findCommand(argv);
  if (!command) {
    const help = argv.includes("--help") || argv.includes("-h");
    const family = COMMANDS.filter(
      (c) => words[0] !== undefined && c.name.startsWith(`${words[0]} `),
    );
    if (family.length && (help || words.length === 1)) {
      // `edgemq topic`: the subcommands of that word.
      const text = [
        `usage: edgemq ${words[0]} <${family.map((c) => c.name.split(" ")[1]).join("|")}> ...`,
        "",
        ...family.map((c) => `  edgemq ${c.name} ${c.usage}`.trimEnd() + `\n      ${c.summary}`),
      ].join("\n");
      (help ? process.stdout : process.stderr).write(text + "\n");
      return help ? EXIT.ok : EXIT.usage;
    }
    if (words.length === 0) {
      (help ? process.stdout : process.stderr).write(overview() + "\n");
      return help ? EXIT.ok : EXIT.usage;
    }
    printError(json, "USAGE", `unknown command: ${words.join(" ")}`, [
      "run `edgemq --help` for the list",
    ]);
    return EXIT.usage;
  }
  try {
    const args = parseCommandArgs(rest, command.options);
    if (args.values.help === true) {
      process.stdout.write(commandHelp(command) + "\n");
      return EXIT.ok;
    }
    await command.run(new Context(args, env), args);
    return typeof process.exitCode === "number" ? process.exitCode : EXIT.ok;
  } catch (e) {
    if (e instanceof UsageError) {
      printError(json, "USAGE", e.message, [
        `usage: edgemq ${command.name} ${command.usage}`.trimEnd(),
      ]);
      return EXIT.usage;
    }
    const err = EdgemqError.from(e);
    if (err?.details?.network === true) {
      // No answer at all (refused, DNS, reset, timeout): nothing the broker said.
      const inner = (err.cause as { cause?: { code?: unknown; message?: unknown } } | undefined)
        ?.cause;
      const why = inner?.code ?? inner?.message;
      printError(
        json,
        err.code,
        `${err.message}${typeof why === "string" ? ` (${why})` : ""} at ${argvEndpoint(argv, env)}`,
      );
      return EXIT.unreachable;
    }
    if (err) {
      printError(json, err.code, err.message);
      return EXIT.refused;
    }
    throw e;
  }
}

const code = await main(process.argv.slice(2));
// Let stdout drain (a pipe may still hold output) before the exit code is set.
process.exitCode = code;
