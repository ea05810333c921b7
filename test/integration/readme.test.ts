import { type ChildProcess, execFile, spawn } from "node:child_process";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { createSiweMessage } from "viem/siwe";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAppContext } from "../../src/app.js";
import { anvilAccount } from "../../src/chain/local-chain.js";
import { loadConfig } from "../../src/config.js";
import type { AppContext } from "../../src/context.js";
import { createDatabaseClient, type DatabaseClient } from "../../src/db/client.js";
import { createLogger } from "../../src/logger.js";
import { createFundedCaller } from "../helpers/app.js";
import { cliEnv, repoRoot, startCli } from "../helpers/cli.js";
import { type PackedClient, packClient } from "../helpers/client-package.js";
import { createTestDatabase, type TestDatabase } from "../helpers/database.js";
import { solidPng } from "../helpers/images.js";
import { freePort } from "../helpers/ports.js";
import {
  mismatches,
  parseDocumented,
  type ReadmeCommand,
  type ReadmeScript,
  readmeBlocks,
  readmeScripts,
} from "../helpers/readme.js";

/**
 * The README's examples, run as printed against `polyforge dev` (what `npm start` runs) and
 * checked against the answers the README shows, so the README cannot drift from the service.
 *
 * What the test fills in is what a reader fills in: `$KEY` (a fresh key with the demo's 1,000
 * test credits for each `##` section, so balances read as documented), `$SESSION` (a wallet
 * sign-in of the demo wallet), ids written `gen_…`, `img_…`, … (the one the example before
 * made), the sign-in message and signature, and the ports (`localhost:3000` is the API,
 * `localhost:4000` the webhook receiver). Blocks that cannot run here say why in a
 * `<!-- not run by the README test: … -->` line above them.
 *
 * The ```ts examples run too (this README's and the client package's own), as scripts
 * importing @polyforge/client from its packed tarball,
 * with `KEY` and `PAYER_PRIVATE_KEY` as `npm start` prints them; what they print is checked
 * against their `// → ` lines, and they must compile against the packed package's types.
 */

const run = promisify(execFile);
const ID = /\b(gen|img|res|wfr|wf|key|acc|pass|tpl|bat)_[0-9a-z]{26}\b/g;
const SECRET = /whsec_[A-Za-z0-9+/=]+/;
// anvil's first public test wallet: the demo account of `npm start`.
const demoWallet = anvilAccount(0);

/** Commands the README shows that are not requests to the running stack. */
const NOT_REQUESTS = /^(npm (install|start|test)\b|docker compose |URL_SIGNING_SECRET=|CHANNELS=)/;
const isRequest = (text: string) =>
  !NOT_REQUESTS.test(text.trim()) && !NOT_REQUESTS.test(programOf(text));

/** The program a command runs, past any `NAME=value` it sets for it. */
const programOf = (text: string) => text.trim().replace(/^(\w+=\S+\s+)+/, "");

let database: TestDatabase;
let client: DatabaseClient;
let ctx: AppContext;
let dev: ReturnType<typeof startCli>;
let dataDir: string;
let workDir: string;
let api: string;
let receiverPort: number;
let packed: PackedClient;
/** The scripts' compile errors, if any: checked while the stack starts, asserted by a test. */
let compiled: Promise<string>;
/** What the `npm start` banner hands a reader: its demo key and its funded wallet's key. */
const banner = { key: "", payerKey: "" };
const background: ChildProcess[] = [];
const backgroundOutput: string[] = [];

/** What a reader carries from one example to the next. */
const state = {
  key: "",
  session: "",
  secret: "",
  section: "",
  ids: new Map<string, string>(),
  videoJob: "",
  nonce: undefined as { nonce: string; domain: string; uri: string; statement: string } | undefined,
};

beforeAll(async () => {
  database = await createTestDatabase();
  dataDir = await mkdtemp(path.join(tmpdir(), "polyforge-readme-"));
  await chmod(dataDir, 0o755);
  workDir = await mkdtemp(path.join(tmpdir(), "polyforge-readme-cwd-"));
  await writeFile(path.join(workDir, "photo.png"), await solidPng(1024, 768, "#c63"));
  const port = await freePort();
  receiverPort = await freePort();
  api = `http://localhost:${port}`;
  dev = startCli(["dev"], {
    DATABASE_URL: database.url,
    PORT: String(port),
    POLYFORGE_DATA_DIR: dataDir,
    SSRF_ALLOW_HOSTS: `localhost:${receiverPort}`,
    LOG_LEVEL: "warn",
  });
  // The client is packed and the README's TypeScript compiled while the stack starts.
  const packing = packClient().then(async (client) => {
    packed = client;
    compiled = compileScripts(client);
  });
  const [output] = await Promise.all([dev.waitFor("Press Ctrl-C to stop.", 120_000), packing]);
  banner.key = /API key {3}(sk_test_\w+)/.exec(output)?.[1] ?? "";
  banner.payerKey = /Its key {3}(0x[0-9a-f]{64})/.exec(output)?.[1] ?? "";
  const config = loadConfig({ NODE_ENV: "test", DATABASE_URL: database.url, LOG_LEVEL: "warn" });
  const logger = createLogger(config);
  client = createDatabaseClient(database.url, { poolMax: 2, logger });
  ctx = createAppContext(config, logger, client);
}, 180_000);

afterAll(async () => {
  for (const child of background) child.kill("SIGTERM");
  dev?.child.kill("SIGTERM");
  await dev?.exited;
  await client?.close();
  await database?.drop();
  await packed?.remove();
  await rm(dataDir, { recursive: true, force: true });
  await rm(workDir, { recursive: true, force: true });
});

/** The ports of this run's stack, where the README says 3000 (the API) and 4000 (the receiver). */
const onOurPorts = (text: string) =>
  text
    .replaceAll("localhost:3000", api.replace("http://", ""))
    .replaceAll("localhost:4000", `localhost:${receiverPort}`);

/** The command with what a reader fills in. */
function filledIn(text: string): string {
  return onOurPorts(text)
    .replace(/whsec_…/g, () => state.secret)
    .replace(/\b(gen|img|res|wfr|wf|key|acc|pass|tpl|bat)_…/g, (_, prefix: string) => {
      const id = state.ids.get(prefix);
      if (!id) throw new Error(`no ${prefix}_ id from an earlier example to fill in`);
      return id;
    });
}

/** The ids an answer names first, for the examples after it (reads name others' ids too). */
function remember(text: string) {
  const seen = new Set<string>();
  for (const [id, prefix] of text.matchAll(ID)) {
    if (seen.has(prefix as string)) continue;
    seen.add(prefix as string);
    state.ids.set(prefix as string, id);
  }
  const secret = SECRET.exec(text)?.[0];
  if (secret) state.secret = secret;
}

/** A curl command's arguments, split by the shell exactly as when it is pasted. */
async function curlArguments(command: string): Promise<string[]> {
  const { stdout } = await run("bash", ["-c", `curl() { printf '%s\\0' "$@"; }\n${command}`], {
    cwd: workDir,
    env: { ...process.env, KEY: state.key, SESSION: state.session },
  });
  return stdout.split("\0").slice(0, -1);
}

interface Answer {
  status: number;
  text: string;
}

/** Sends what curl would send for these arguments (the flags the README uses). */
async function curl(args: string[], method: string | undefined): Promise<Answer> {
  let url = "";
  let body: string | FormData | undefined;
  const headers = new Headers();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === "-s" || arg === "-N") continue;
    if (arg === "-X") method = args[++i];
    else if (arg === "-H") {
      const [name, ...value] = (args[++i] as string).split(":");
      headers.set(name as string, value.join(":").trim());
    } else if (arg === "-d") body = args[++i];
    else if (arg === "-F") {
      const [name, value] = (args[++i] as string).split("=", 2) as [string, string];
      const form = body instanceof FormData ? body : new FormData();
      const file = await readFile(path.join(workDir, value.replace(/^@/, "")));
      form.append(name, new Blob([new Uint8Array(file)]), value.replace(/^@/, ""));
      body = form;
    } else if (arg.startsWith("-")) throw new Error(`curl flag ${arg} is not one the README uses`);
    else url = /^https?:\/\//.test(arg) ? arg : `http://${arg}`;
  }
  if (typeof body === "string" && !headers.has("content-type"))
    headers.set("content-type", "application/x-www-form-urlencoded");
  const res = await fetch(url, {
    method: method ?? (body === undefined ? "GET" : "POST"),
    headers,
    body,
  });
  return { status: res.status, text: await res.text() };
}

/** The sign-in example's body, with the message the demo wallet signs for the nonce before it. */
async function signedIn(): Promise<string> {
  const issued = state.nonce;
  if (!issued) throw new Error("the verify example needs the nonce example before it");
  const message = createSiweMessage({
    address: demoWallet.address,
    chainId: 84532,
    domain: issued.domain,
    uri: issued.uri,
    nonce: issued.nonce,
    version: "1",
    statement: issued.statement,
    issuedAt: new Date(),
  });
  return JSON.stringify({ message, signature: await demoWallet.signMessage({ message }) });
}

/** Runs one example; answers what it printed or sent back. */
async function runExample(command: ReadmeCommand): Promise<Answer> {
  const text = filledIn(command.text).trim();
  const program = programOf(text);
  if (program.startsWith("curl ")) {
    const args = (await curlArguments(text)).slice(0);
    if (text.includes("/v1/auth/verify")) args[args.indexOf("-d") + 1] = await signedIn();
    const answer = await curl(args, undefined);
    if (!args.some((a) => a === "-X" || a === "-d" || a === "-F")) return answer; // a read
    remember(answer.text);
    return answer;
  }
  const env = cliEnv({ DATABASE_URL: database.url, POLYFORGE_DATA_DIR: dataDir, KEY: state.key });
  if (program.startsWith("node examples/webhook-receiver.mjs")) {
    const child = spawn("bash", ["-c", text], {
      cwd: repoRoot,
      env: { ...env, WEBHOOK_RECEIVER_PORT: String(receiverPort) },
    });
    const index = backgroundOutput.push("") - 1;
    child.stdout?.on("data", (d) => (backgroundOutput[index] += d));
    child.stderr?.on("data", (d) => (backgroundOutput[index] += d));
    background.push(child);
    for (let i = 0; i < 100 && !backgroundOutput[index]?.includes("listening"); i++)
      await new Promise((r) => setTimeout(r, 100));
    return { status: 0, text: backgroundOutput[index] as string };
  }
  if (program.startsWith("npx polyforge ") || program.startsWith("node examples/")) {
    const result = await run("bash", ["-c", text], {
      cwd: repoRoot,
      env: { ...env, POLYFORGE_API_URL: api },
    }).then(
      ({ stdout }) => ({ status: 0, text: stdout }),
      (err: { code: number; stdout: string; stderr: string }) => ({
        status: err.code,
        text: `${err.stdout}${err.stderr}`,
      }),
    );
    if (!/\blist\b/.test(program)) remember(result.text);
    return result;
  }
  throw new Error(`the README test does not know how to run: ${text}`);
}

/** How an answer differs from what the README documents of it (nothing when it agrees). */
function problemsOf(command: ReadmeCommand, answer: Answer): string[] {
  const documented = command.documented && onOurPorts(command.documented);
  const failed = (expected: string) =>
    answer.status >= 400 || (expected !== "" && answer.status !== Number(expected))
      ? [`status ${answer.status}${expected ? `, documented ${expected}` : ""}`]
      : [];
  if (!documented || !/^\s*(\d{3}\s+)?[{[]|^event:|^paid /.test(documented)) return failed("");
  if (documented.startsWith("event:")) {
    // Server-Sent Events: the documented events, ending as documented with the final object.
    const events = [...answer.text.matchAll(/^event: (\w+)\ndata: (.*)$/gm)].map((m) => ({
      name: m[1] as string,
      data: m[2] as string,
    }));
    const names = [...documented.matchAll(/^event: (\w+)/gm)].map((m) => m[1] as string);
    const missing = names.filter((n) => !events.some((e) => e.name === n));
    if (missing.length || events.at(-1)?.name !== names.at(-1))
      return [`events ${events.map((e) => e.name).join(",")}, documented ${names.join(",")}`];
    const lastData = [...documented.matchAll(/^data: (.*)$/gm)].at(-1)?.[1] as string;
    return mismatches(parseDocumented(lastData).value, JSON.parse(events.at(-1)?.data as string));
  }
  let text = documented;
  let output = answer.text;
  const problems: string[] = [];
  if (!/^\s*(\d{3}\s+)?[{[]/.test(text)) {
    // A line of text first (a script's own report), then its JSON.
    const [first, ...rest] = text.split("\n");
    const [actualFirst, ...actualRest] = output.split("\n");
    problems.push(...mismatches(parseDocumented(JSON.stringify(first)).value, actualFirst));
    text = rest.join("\n");
    output = actualRest.join("\n");
  }
  const { status, value } = parseDocumented(text);
  let json: unknown;
  try {
    json = JSON.parse(output);
  } catch {
    return [...problems, "the answer is not JSON"];
  }
  return [
    ...problems,
    ...failed(status === undefined ? "" : String(status)),
    ...mismatches(value, json),
  ];
}

const isRead = (command: ReadmeCommand) =>
  command.text.trimStart().startsWith("curl ") && !/ -(X|d|F) /.test(` ${command.text} `);

const readme = await readFile(path.join(repoRoot, "README.md"), "utf8");
const blocks = readmeBlocks(readme);
const CLIENT_README = "packages/client/README.md";
const scripts: (ReadmeScript & { readme: string })[] = [
  ...readmeScripts(readme).map((s) => ({ ...s, readme: "README.md" })),
  ...readmeScripts(await readFile(path.join(repoRoot, CLIENT_README), "utf8")).map((s) => ({
    ...s,
    readme: CLIENT_README,
  })),
];
const scriptFile = (script: (typeof scripts)[number]) =>
  path.join(
    packed.dir,
    `${script.readme === CLIENT_README ? "client-" : ""}readme-${script.line}.mts`,
  );

/** Writes each TypeScript example beside the packed client and compiles them: tsc's output. */
async function compileScripts(client: PackedClient): Promise<string> {
  const files: string[] = [];
  for (const script of scripts.filter((s) => s.notRun === undefined)) {
    files.push(path.basename(scriptFile(script)));
    await writeFile(scriptFile(script), onOurPorts(script.code));
  }
  const compilerOptions = {
    target: "ES2022",
    lib: ["ES2023", "DOM"],
    module: "NodeNext",
    moduleResolution: "NodeNext",
    strict: true,
    noUncheckedIndexedAccess: true,
    skipLibCheck: true,
    noEmit: true,
    types: ["node"],
  };
  await writeFile(
    path.join(client.dir, "tsconfig.json"),
    JSON.stringify({ compilerOptions, files }),
  );
  return run(path.join(repoRoot, "node_modules/.bin/tsc"), ["-p", client.dir]).then(
    () => "",
    (err: { stdout: string; stderr: string }) => `${err.stdout}${err.stderr}`,
  );
}

describe("the README, run as printed against npm start's stack", () => {
  it("has examples to run, and says why of every block it does not run", () => {
    expect(blocks.filter((b) => !b.notRun).length).toBeGreaterThan(15);
    for (const block of blocks) {
      if (block.notRun !== undefined)
        expect(block.notRun.length, `line ${block.line}`).toBeGreaterThan(10);
    }
  });

  for (const block of blocks) {
    if (block.notRun !== undefined) continue;
    const requests = block.commands.filter((c) => isRequest(c.text));
    if (requests.length === 0) continue;
    it(`line ${block.line} (${block.section})`, async () => {
      if (block.section !== state.section) {
        state.section = block.section;
        state.key = (await createFundedCaller(ctx, 1_000n)).key;
      }
      for (const command of requests) {
        let answer = await runExample(command);
        let problems = problemsOf(command, answer);
        // A read of work still running is read again until it has finished, as a reader would.
        for (let i = 0; problems.length && isRead(command) && i < 40; i++) {
          await new Promise((r) => setTimeout(r, answer.status === 429 ? 5_000 : 500));
          answer = await runExample(command);
          problems = problemsOf(command, answer);
        }
        const where = `README line ${command.line}: ${command.text.split("\n")[0]}`;
        expect(problems, `${where}\nanswered ${answer.status}: ${answer.text}`).toEqual([]);
        if (command.text.includes("/v1/auth/nonce")) state.nonce = JSON.parse(answer.text);
        if (/\/v1\/videos\/jobs /.test(command.text)) state.videoJob = JSON.parse(answer.text).id;
        if (command.text.includes("/v1/auth/verify"))
          state.session = JSON.parse(answer.text).sessionToken;
      }
    }, 120_000);
  }

  for (const script of scripts) {
    if (script.notRun !== undefined) continue;
    it(`TypeScript at ${script.readme} line ${script.line} (${script.section})`, async () => {
      expect(banner.key, "the banner's API key").toMatch(/^sk_test_/);
      const { stdout } = await run(
        path.join(repoRoot, "node_modules/.bin/tsx"),
        [scriptFile(script)],
        {
          cwd: packed.dir,
          env: { ...process.env, KEY: banner.key, PAYER_PRIVATE_KEY: banner.payerKey },
        },
      );
      const documented = parseDocumented(JSON.stringify(onOurPorts(script.documented.join("\n"))));
      expect(mismatches(documented.value, stdout.trimEnd()), `printed:\n${stdout}`).toEqual([]);
    }, 60_000);
  }

  it("has TypeScript examples that compile against the packed client's types", async () => {
    expect(scripts.filter((s) => s.notRun === undefined).length).toBeGreaterThanOrEqual(4);
    for (const script of scripts)
      expect(
        script.documented.length,
        `${script.readme} line ${script.line} documents what it prints`,
      ).toBeGreaterThan(0);
    expect(await compiled).toBe("");
  });

  it("delivered the video job's webhook to the README's receiver, which verified it", async () => {
    const video = state.videoJob;
    expect(video).toMatch(/^gen_/);
    for (let i = 0; i < 100 && !backgroundOutput.join("").includes(`${video} completed`); i++)
      await new Promise((r) => setTimeout(r, 100));
    expect(backgroundOutput.join("")).toContain(
      `generation.completed ${video} completed (verified)`,
    );
  });
});
