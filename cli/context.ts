/**
 * What every CLI command gets: the connection (SDK clients built from
 * `--endpoint`/`--token` or EDGEMQ_ENDPOINT/EDGEMQ_TOKEN), the output mode
 * (tables, or JSON with `--json`) and the command's parsed arguments.
 */
import { parseArgs } from "node:util";
import {
  Admin,
  createTransport,
  type HttpConnection,
  Producer,
  type Transport,
} from "../client/index.ts";

/** A mistake on the command line: exit code 2, with the command's usage. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** Options of node:util parseArgs. */
export type OptionSpec = Record<
  string,
  { type: "string" | "boolean"; short?: string; multiple?: boolean }
>;

/** Options every command takes. */
export const GLOBAL_OPTIONS = {
  endpoint: { type: "string", short: "e" },
  token: { type: "string", short: "t" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const satisfies OptionSpec;

/** Parsed arguments of one command. */
export interface Args {
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  positionals: string[];
}

/** A CLI command: `edgemq <name> <usage>`. */
export interface Command {
  /** One or two words: "send", "topic create". */
  name: string;
  /** Arguments after the name, for the help text: "<topic> [body...]". */
  usage: string;
  summary: string;
  /** Option lines of the help text. */
  help?: string[];
  options?: OptionSpec;
  run(ctx: Context, args: Args): Promise<void>;
}

export const DEFAULT_ENDPOINT = "http://127.0.0.1:8787";

/** Parses `argv` (the words after the command name) against global plus command options. */
export function parseCommandArgs(argv: string[], options: OptionSpec = {}): Args {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { ...GLOBAL_OPTIONS, ...options },
      allowPositionals: true,
      strict: true,
    });
    return { values: values as Args["values"], positionals };
  } catch (e) {
    throw new UsageError(
      (e as Error).message.replace(/\. To specify a positional argument.*$/s, ""),
    );
  }
}

/** The connection and output of one CLI run. */
export class Context {
  readonly endpoint: string;
  readonly token: string | undefined;
  readonly json: boolean;
  readonly args: Args;
  readonly #connection: HttpConnection;
  #admin: Admin | undefined;
  #transport: Transport | undefined;

  constructor(args: Args, env: NodeJS.ProcessEnv) {
    this.args = args;
    const endpoint = str(args.values.endpoint) ?? env.EDGEMQ_ENDPOINT ?? DEFAULT_ENDPOINT;
    if (!/^https?:\/\/[^/]/.test(endpoint)) {
      throw new UsageError(
        `--endpoint must be an http:// or https:// URL, got ${JSON.stringify(endpoint)}`,
      );
    }
    this.endpoint = endpoint.replace(/\/+$/, "");
    const token = str(args.values.token) ?? env.EDGEMQ_TOKEN;
    this.token = token === "" ? undefined : token;
    this.json = args.values.json === true;
    this.#connection = {
      endpoint: this.endpoint,
      ...(this.token !== undefined && { token: this.token }),
    };
  }

  /** The SDK's admin client. */
  get admin(): Admin {
    return (this.#admin ??= new Admin(this.#connection));
  }

  /** A producer that sends each call as one request (no linger), for `send`. */
  producer(): Producer {
    return new Producer({ ...this.#connection, batch: false });
  }

  /** The SDK connection, for clients built per command (a PullConsumer for `tail`). */
  get connection(): HttpConnection {
    return this.#connection;
  }

  /** A raw contract call, for the few the SDK's Admin does not wrap. */
  request(method: string, path: string, body?: unknown): Promise<unknown> {
    this.#transport ??= createTransport(this.#connection);
    return this.#transport.request(method, path, body);
  }

  /** Prints `data` as JSON with `--json`, else the human text. */
  print(human: () => string, data: unknown): void {
    if (this.json) process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
    else {
      const text = human();
      if (text) process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
    }
  }

  /** A note for people (stderr), never mixed into the data on stdout. */
  note(text: string): void {
    process.stderr.write(`${text}\n`);
  }

  /** A string option. */
  str(name: string): string | undefined {
    return str(this.args.values[name]);
  }

  /** A repeatable string option (always an array). */
  list(name: string): string[] {
    const v = this.args.values[name];
    return Array.isArray(v) ? (v as string[]) : typeof v === "string" ? [v] : [];
  }

  /** A boolean flag. */
  flag(name: string): boolean {
    return this.args.values[name] === true;
  }

  /** An integer option within [min, max], or undefined when absent. */
  int(name: string, min: number, max: number): number | undefined {
    const v = this.str(name);
    if (v === undefined) return undefined;
    if (!/^-?\d+$/.test(v) || Number(v) < min || Number(v) > max) {
      throw new UsageError(
        `--${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`,
      );
    }
    return Number(v);
  }

  /** The positional argument at `i`, required. */
  arg(i: number, what: string): string {
    const v = this.args.positionals[i];
    if (v === undefined || v === "") throw new UsageError(`missing ${what}`);
    return v;
  }

  /** Fails on positional arguments beyond the first `n`. */
  atMost(n: number): void {
    if (this.args.positionals.length > n) {
      throw new UsageError(`unexpected argument ${JSON.stringify(this.args.positionals[n])}`);
    }
  }

  /** Runs `parse` on user input, turning its Error into a usage error. */
  parse<T>(parse: () => T): T {
    try {
      return parse();
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
}

function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}
