import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { createAppContext } from "../../src/app.js";
import { anvilAccount, LOCAL_ROLES, privateKeyOf } from "../../src/chain/local-chain.js";
import { USDC } from "../../src/chain/networks.js";
import { configSchema, loadConfig } from "../../src/config.js";
import { createDatabaseClient } from "../../src/db/client.js";
import { createLogger } from "../../src/logger.js";
import { createFundedCaller } from "../helpers/app.js";
import { repoRoot } from "../helpers/cli.js";
import { createTestDatabase, type TestDatabase } from "../helpers/database.js";
import { type ObjectStore, startObjectStore } from "../helpers/object-store.js";
import { freePort } from "../helpers/ports.js";

/**
 * No Docker engine runs here, so docker-compose.yml is checked against the code instead: its
 * shape (services, health checks, start order), the environment it gives each service through
 * the real config loader, and finally its commands and health checks run as plain processes,
 * with only host names, ports and paths moved to this machine (and MinIO's part played by a real
 * S3-protocol server), through to a generation stored in the bucket and downloaded back.
 */

// biome-ignore lint/suspicious/noExplicitAny: a parsed YAML document is read field by field.
type Yaml = any;

const composeText = readFileSync(path.join(repoRoot, "docker-compose.yml"), "utf8");
const dockerfile = readFileSync(path.join(repoRoot, "Dockerfile"), "utf8");
/** What the user exports before `docker compose up`; the README says to set this one. */
const shell = { URL_SIGNING_SECRET: "compose-test-signing-secret-0123456789" };

/**
 * Compose's variable interpolation: $$, $VAR, ${VAR}, ${VAR:-default}, ${VAR-default},
 * ${VAR:?error}, ${VAR?error}, ${VAR:+alternative} and ${VAR+alternative}, nested in defaults.
 */
function interpolate(text: string, vars: Record<string, string | undefined>): string {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    if (text[i] !== "$") {
      out += text[i];
      continue;
    }
    const next = text[i + 1];
    if (next === "$") {
      out += "$";
      i++;
    } else if (next === "{") {
      let depth = 1;
      let end = i + 2;
      for (; end < text.length && depth > 0; end++) {
        if (text[end] === "{") depth++;
        if (text[end] === "}") depth--;
      }
      if (depth !== 0) throw new Error(`unclosed \${ in ${text}`);
      const inner = text.slice(i + 2, end - 1);
      const match = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([\s\S]*))?$/.exec(inner);
      if (!match) throw new Error(`invalid interpolation \${${inner}}`);
      const [, name, op, arg = ""] = match as unknown as [string, string, string?, string?];
      const value = vars[name];
      const unset = value === undefined;
      const empty = unset || value === "";
      const missing = op?.startsWith(":") ? empty : unset;
      if (op?.endsWith("-")) out += missing ? interpolate(arg, vars) : value;
      else if (op?.endsWith("?")) {
        if (missing) throw new Error(`required variable ${name} is missing a value: ${arg}`);
        out += value;
      } else if (op?.endsWith("+")) out += missing ? "" : interpolate(arg, vars);
      else out += value ?? "";
      i = end - 1;
    } else {
      const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i + 1))?.[0];
      if (!name) out += "$";
      else {
        out += vars[name] ?? "";
        i += name.length;
      }
    }
  }
  return out;
}

function interpolateAll(value: unknown, vars: Record<string, string | undefined>): unknown {
  if (typeof value === "string") return interpolate(value, vars);
  if (Array.isArray(value)) return value.map((v) => interpolateAll(v, vars));
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolateAll(v, vars)]));
  }
  return value;
}

const load = (vars: Record<string, string | undefined>): Yaml =>
  interpolateAll(parse(composeText, { merge: true }), vars);

const compose: Yaml = load(shell);
const services: Record<string, Yaml> = compose.services;
const ourImage = (service: Yaml) => service.build === "." || service.build?.context === ".";

/** The image's own ENV lines, which a container starts with under compose's `environment`. */
const imageEnv: Record<string, string> = Object.fromEntries(
  [...dockerfile.matchAll(/^ENV\s+(\w+)=(\S+)\s*$/gm)].map((m) => [m[1], m[2]]),
);

/** The environment a service's container runs with (image ENV, then compose's). */
function serviceEnv(name: string, from: Record<string, Yaml> = services): Record<string, string> {
  const service = from[name];
  const env: Record<string, string> = ourImage(service) ? { ...imageEnv } : {};
  const declared = service.environment ?? {};
  const entries: [string, unknown][] = Array.isArray(declared)
    ? declared.map((line: string) => {
        const at = line.indexOf("=");
        return at < 0 ? [line, null] : [line.slice(0, at), line.slice(at + 1)];
      })
    : Object.entries(declared);
  for (const [key, value] of entries) {
    // A key without a value is passed through from the host; here there is none.
    if (value === null || value === undefined) delete env[key];
    else env[key] = String(value);
  }
  return env;
}

/** The entries compose sets itself (not the image's), to check against the config schema. */
function composeVariables(name: string): string[] {
  const declared = services[name].environment ?? {};
  return Array.isArray(declared)
    ? declared.map((line: string) => line.split("=")[0] as string)
    : Object.keys(declared);
}

const longRunning = () =>
  Object.entries(services)
    .filter(([, s]) => s.restart !== "no")
    .map(([name]) => name);
const appServices = ["migrate", "api", "worker"] as const;
const treasury = anvilAccount(LOCAL_ROLES.treasury).address;
const chainArgs = (): string[] => services.chain.command;
const argAfter = (args: string[], flag: string) => args[args.indexOf(flag) + 1];

describe("docker-compose.yml: the services and their order", () => {
  it("runs postgres, minio, the chain, a one-shot migrate, the api and the worker", () => {
    for (const name of ["postgres", "minio", "minio-bucket", "chain", "migrate", "api", "worker"]) {
      expect(services, name).toHaveProperty(name);
    }
    expect(services.migrate.restart).toBe("no");
    expect(services.migrate.command).toEqual(["migrate"]);
    expect(services.api.command).toEqual(["serve"]);
    expect(services.worker.command).toEqual(["worker"]);
    expect(services.chain.command.slice(0, 3)).toEqual(["chain", "--network", "test"]);
    for (const name of [...appServices, "chain"]) {
      expect(ourImage(services[name]), `${name} builds our image`).toBe(true);
      expect(services[name].image).toBe(services.api.image);
    }
  });

  it("gives every long-running service a health check", () => {
    expect(longRunning()).toEqual(
      expect.arrayContaining(["postgres", "minio", "chain", "api", "worker"]),
    );
    for (const name of longRunning()) {
      const check = services[name].healthcheck;
      expect(check, `${name} has a healthcheck`).toBeDefined();
      expect(check.disable, name).not.toBe(true);
      expect(["CMD", "CMD-SHELL"], name).toContain(check.test[0]);
    }
  });

  it("starts in order: postgres healthy → migrate completed → api and worker; chain healthy before both", () => {
    const dependsOn = (name: string) => services[name].depends_on ?? {};
    expect(dependsOn("migrate").postgres).toEqual({ condition: "service_healthy" });
    for (const name of ["api", "worker"]) {
      expect(dependsOn(name).migrate).toEqual({ condition: "service_completed_successfully" });
      expect(dependsOn(name).chain).toEqual({ condition: "service_healthy" });
    }
    // Every service waited on as healthy has a health check to become so.
    for (const [name, service] of Object.entries(services)) {
      for (const [target, { condition }] of Object.entries<Yaml>(service.depends_on ?? {})) {
        expect(services, `${name} depends on ${target}`).toHaveProperty(target);
        if (condition === "service_healthy") {
          expect(services[target].healthcheck, `${target} (waited on by ${name})`).toBeDefined();
        }
      }
    }
  });

  it("builds an image holding everything the commands read, from what npm ci installs", () => {
    expect(dockerfile).toMatch(/^RUN npm ci --omit=dev\b/m);
    for (const [, source] of dockerfile.matchAll(/^COPY (?!--)(.+?) \S+\s*$/gm)) {
      for (const file of (source as string).split(/\s+/)) {
        expect(existsSync(path.join(repoRoot, file)), `COPY ${file}`).toBe(true);
      }
    }
    expect(dockerfile).toMatch(/^COPY contracts\/artifacts /m);
    // Every file the commands import by path, followed from bin/, lies under what the image copies.
    const copied = [...dockerfile.matchAll(/^COPY (?!--)(.+?) \S+\s*$/gm)].flatMap(([, src]) =>
      (src as string).split(/\s+/).map((f) => path.join(repoRoot, f)),
    );
    const seen = new Set<string>();
    const follow = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      expect(
        copied.some((c) => file === c || file.startsWith(`${c}${path.sep}`)),
        `${path.relative(repoRoot, file)} is imported but not copied into the image`,
      ).toBe(true);
      const text = readFileSync(file, "utf8");
      for (const [, spec] of text.matchAll(/(?:from|import\()\s*"(\.{1,2}\/[^"]+)"/g)) {
        const target = path.resolve(path.dirname(file), spec as string);
        const ts = target.replace(/\.js$/, ".ts");
        follow(existsSync(ts) ? ts : target);
      }
    };
    follow(path.join(repoRoot, "bin/polyforge.js"));
    expect([...seen].some((f) => f.includes(`${path.sep}packages${path.sep}mcp${path.sep}`))).toBe(
      true,
    );
    const pkg = JSON.parse(readFileSync(path.join(repoRoot, "package.json"), "utf8"));
    // anvil (the chain service) must survive --omit=dev.
    expect(pkg.dependencies).toHaveProperty("@foundry-rs/anvil-linux-amd64");
    expect(pkg.dependencies).toHaveProperty("tsx");
  });
});

describe("docker-compose.yml: the environment, through the real config loader", () => {
  const known = new Set(Object.keys(configSchema.shape));

  it("sets only variables the config schema knows (a typo fails here)", () => {
    for (const name of [...appServices, "chain"]) {
      for (const variable of composeVariables(name)) {
        expect(known.has(variable), `${name}: ${variable} is not a config variable`).toBe(true);
      }
    }
    for (const variable of Object.keys(imageEnv)) expect(known.has(variable), variable).toBe(true);
  });

  for (const name of appServices) {
    it(`${name}: loads in production, with test payments on the chain service's facilitator`, () => {
      const config = loadConfig(serviceEnv(name));
      expect(config.env).toBe("production");
      expect(config.http.host).toBe("0.0.0.0");
      expect(config.database.url).toMatch(/^postgres:\/\/[^@]+@postgres:5432\//);
      expect(config.urlSigningSecret).toBe(shell.URL_SIGNING_SECRET);
      expect(config.payments.networks.test).toEqual({
        rpcUrl: `http://chain:${serviceEnv("chain").LOCAL_CHAIN_PORT}`,
        payTo: treasury,
        usdcAddress: USDC.test.address,
        facilitator: { url: `http://chain:${argAfter(chainArgs(), "--facilitator-port")}` },
        startBlock: 0n,
      });
      expect(config.payments.networks.live).toBeUndefined();
    });
  }

  it("api and worker share the signing secret, the database and the minio service's bucket", () => {
    const api = loadConfig(serviceEnv("api"));
    const worker = loadConfig(serviceEnv("worker"));
    expect(worker.urlSigningSecret).toBe(api.urlSigningSecret);
    expect(worker.database.url).toBe(api.database.url);
    const minio = services.minio.environment;
    expect(api.storage).toEqual({
      s3: {
        bucket: "polyforge",
        prefix: "",
        endpoint: "http://minio:9000",
        region: "us-east-1",
        credentials: {
          accessKeyId: minio.MINIO_ROOT_USER,
          secretAccessKey: minio.MINIO_ROOT_PASSWORD,
        },
        pathStyle: true,
      },
      downloads: "proxy",
      presignedTtlSeconds: 300,
      outputRetentionDays: undefined,
    });
    expect(worker.storage).toEqual(api.storage);
    // No local outputs directory to share: nothing is written to the containers' disks.
    for (const name of ["api", "worker"]) expect(services[name].volumes, name).toBeUndefined();
  });

  it("minio: a store on its volume with a health check, and a one-shot that creates the bucket before api and worker start", () => {
    const { s3 } = loadConfig(serviceEnv("api")).storage;
    const endpoint = new URL(s3?.endpoint as string);
    expect(services).toHaveProperty(endpoint.hostname);
    const minio = services[endpoint.hostname];
    expect(minio.image).toMatch(/^minio\/minio:RELEASE\./);
    // MinIO's API listens on 9000 unless --address says otherwise.
    expect(minio.command).toEqual(["server", "/data"]);
    expect(endpoint.port).toBe("9000");
    expect(minio.ports).toBeUndefined();
    const dataVolume = (minio.volumes as string[]).find((v) => v.endsWith(":/data"));
    expect(compose.volumes).toHaveProperty((dataVolume as string).split(":")[0] as string);
    expect(minio.healthcheck.test).toEqual(["CMD", "mc", "ready", "local"]);

    const bucket = services["minio-bucket"];
    expect(bucket.restart).toBe("no");
    expect(bucket.image).toBe(minio.image);
    expect(bucket.depends_on[endpoint.hostname]).toEqual({ condition: "service_healthy" });
    expect(bucket.environment).toEqual(minio.environment);
    const script = (bucket.command as string[]).join(" ");
    // $$ in compose is one $: the shell reads the pair from the one-shot's environment.
    expect(script).toContain(
      `mc alias set stack ${endpoint.origin} "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"`,
    );
    expect(script).toContain(`mc mb --ignore-existing stack/${s3?.bucket}`);
    for (const name of ["api", "worker"]) {
      expect(services[name].depends_on["minio-bucket"], name).toEqual({
        condition: "service_completed_successfully",
      });
    }
  });

  it("the chain service loads as development tooling and listens on every interface", () => {
    const config = loadConfig(serviceEnv("chain"));
    expect(config.env).toBe("development");
    expect(argAfter(chainArgs(), "--host")).toBe("0.0.0.0");
    expect(path.dirname(config.localChain.statePath)).toBe(config.dataDir);
    const mount = (services.chain.volumes as string[]).find((v) =>
      v.endsWith(`:${config.dataDir}`),
    );
    expect(compose.volumes).toHaveProperty((mount as string).split(":")[0] as string);
  });

  it("points DATABASE_URL at the postgres service with its credentials", () => {
    const url = new URL(serviceEnv("api").DATABASE_URL as string);
    const pg = services.postgres.environment;
    expect([url.hostname, url.username, url.password, url.pathname]).toEqual([
      "postgres",
      pg.POSTGRES_USER,
      pg.POSTGRES_PASSWORD,
      `/${pg.POSTGRES_DB}`,
    ]);
  });

  it("publishes the load balancer at PUBLIC_URL, balancing over the api service on its PORT", () => {
    const env = serviceEnv("api");
    const publicUrl = new URL(env.PUBLIC_URL as string);
    expect(services.proxy.ports).toContain(`${publicUrl.port}:${publicUrl.port}`);
    expect(services.api.ports).toBeUndefined();
    const caddyfile = readFileSync(path.join(repoRoot, "deploy/Caddyfile"), "utf8");
    expect(caddyfile).toContain(`:${publicUrl.port} {`);
    expect(caddyfile).toMatch(new RegExp(`dynamic a api ${env.PORT}\\b`));
    expect(services.proxy.volumes).toContain("./deploy/Caddyfile:/etc/caddy/Caddyfile:ro");
    expect(services.proxy.depends_on.api).toEqual({ condition: "service_healthy" });
  });

  it("holds no secret: the signing secret must come from the shell, and no private key but anvil's public test keys appears", () => {
    expect(() => load({})).toThrow(/required variable URL_SIGNING_SECRET is missing a value/);
    expect(() => load({ URL_SIGNING_SECRET: "" })).toThrow(/URL_SIGNING_SECRET/);
    const publicKeys = new Set(
      Array.from({ length: 10 }, (_, i) => privateKeyOf(anvilAccount(i)).toLowerCase()),
    );
    for (const [key] of composeText.matchAll(/0x[0-9a-fA-F]{64}/g)) {
      expect(publicKeys.has(key.toLowerCase()), "a private key that is not anvil's").toBe(true);
    }
    // The object store's only built-in pair is MinIO's public development default, and an
    // exported pair replaces it for the store and for api and worker alike.
    expect(services.minio.environment).toEqual({
      MINIO_ROOT_USER: "minioadmin",
      MINIO_ROOT_PASSWORD: "minioadmin",
    });
    expect(composeText).toMatch(/minioadmin\/minioadmin is MinIO's well-known development pair/);
    const exported = load({
      ...shell,
      MINIO_ROOT_USER: "stack-admin",
      MINIO_ROOT_PASSWORD: "a-longer-local-secret",
    }).services;
    expect(exported.minio.environment).toEqual({
      MINIO_ROOT_USER: "stack-admin",
      MINIO_ROOT_PASSWORD: "a-longer-local-secret",
    });
    expect(exported["minio-bucket"].environment).toEqual(exported.minio.environment);
    for (const name of ["api", "worker"]) {
      expect(loadConfig(serviceEnv(name, exported)).storage.s3?.credentials, name).toEqual({
        accessKeyId: "stack-admin",
        secretAccessKey: "a-longer-local-secret",
      });
    }
    // The in-process facilitator's key form is refused in production and not needed here.
    for (const name of Object.keys(services)) {
      expect(
        composeVariables(name).filter((v) => v.endsWith("_FACILITATOR_KEY")),
        name,
      ).toEqual([]);
    }
  });
});

/** A long-running command with its output, as a container would run it (env as given, no more). */
function startProcess(argv: string[], env: Record<string, string>) {
  const child: ChildProcess = spawn(
    process.execPath,
    [path.join(repoRoot, "bin/polyforge.js"), ...argv],
    // Outside the repository, so a developer's .env there cannot leak in.
    { cwd: tmpdir(), env: { PATH: process.env.PATH ?? "", ...env } },
  );
  let output = "";
  child.stdout?.on("data", (d) => (output += d));
  child.stderr?.on("data", (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
  return { child, exited, output: () => output };
}

/** Runs a service's healthcheck `test` (CMD form) with its container's environment. */
function runHealthcheck(name: string, rewrite: (arg: string) => string): Promise<number | null> {
  const [form, command, ...args] = services[name].healthcheck.test as unknown[];
  expect(form).toBe("CMD");
  expect(command).toBe("node");
  for (const arg of args) expect(typeof arg, `${name}'s healthcheck arguments`).toBe("string");
  const child = spawn(
    process.execPath,
    (args as string[]).map((arg) => rewrite(arg)),
    {
      env: { PATH: process.env.PATH ?? "", ...serviceEnv(name) },
      stdio: "ignore",
    },
  );
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  return new Promise((resolve) =>
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve(code);
    }),
  );
}

/** Waits for `check`, failing early if the process it waits on has exited. */
async function until(
  check: () => Promise<boolean>,
  proc: { child: ChildProcess; output(): string },
  what: string,
  timeoutMs = 25_000,
) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (proc.child.exitCode !== null) {
      throw new Error(`exited (${proc.child.exitCode}) before ${what}:\n${proc.output()}`);
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${proc.output()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe("docker-compose.yml: its commands and health checks, run as processes", () => {
  let dataRoot: string;
  let database: TestDatabase;
  /** The minio service's stand-in: a real S3-protocol server with the bucket minio-bucket makes. */
  let store: ObjectStore;
  const running: ChildProcess[] = [];
  /** compose port → port on this machine; compose host names → 127.0.0.1. */
  const ports = new Map<string, number>();

  /** Moves a compose value (URL, port or argument) onto this machine. */
  const local = (value: string): string => {
    if (ports.has(value)) return String(ports.get(value));
    return value.replace(
      /\b(chain|postgres|minio|127\.0\.0\.1):(\d+)/g,
      (whole, _host, port: string) => (ports.has(port) ? `127.0.0.1:${ports.get(port)}` : whole),
    );
  };
  const localEnv = (name: string, extra: Record<string, string> = {}) => {
    const env = Object.fromEntries(Object.entries(serviceEnv(name)).map(([k, v]) => [k, local(v)]));
    // The one change beyond hosts and ports: s3rver checks signatures against its own fixed
    // pair, where MinIO takes the root pair compose gives it.
    const s3 = store.env("");
    return {
      ...env,
      STORAGE_S3_ACCESS_KEY_ID: s3.STORAGE_S3_ACCESS_KEY_ID as string,
      STORAGE_S3_SECRET_ACCESS_KEY: s3.STORAGE_S3_SECRET_ACCESS_KEY as string,
      ...extra,
    };
  };

  beforeAll(async () => {
    dataRoot = await mkdtemp(path.join(tmpdir(), "polyforge-compose-"));
    // An empty database: the stack's own migrate step creates the schema.
    database = await createTestDatabase({ migrated: false });
    const bucket = new URL(serviceEnv("api").STORAGE_URL as string).hostname;
    store = await startObjectStore(bucket);
    ports.set(
      new URL(serviceEnv("api").STORAGE_S3_ENDPOINT as string).port,
      Number(new URL(store.endpoint).port),
    );
    const composePorts = [
      serviceEnv("chain").LOCAL_CHAIN_PORT,
      argAfter(chainArgs(), "--facilitator-port"),
      serviceEnv("api").PORT,
      serviceEnv("worker").WORKER_METRICS_PORT,
    ];
    for (const port of composePorts) {
      expect(port, "a port compose sets").toMatch(/^\d+$/);
      ports.set(port as string, await freePort());
    }
  });

  afterAll(async () => {
    for (const child of running.reverse()) {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("close", r));
        child.kill("SIGTERM");
        await exited;
      }
    }
    await database?.drop();
    await store?.close();
    await rm(dataRoot, { recursive: true, force: true });
  });

  it("chain: unhealthy until it runs, then its command starts a prepared chain and facilitator that pass the check", async () => {
    expect(await runHealthcheck("chain", local)).toBe(1);
    const chain = startProcess(
      chainArgs().map(local),
      localEnv("chain", { POLYFORGE_DATA_DIR: path.join(dataRoot, "chain") }),
    );
    running.push(chain.child);
    await until(async () => chain.output().includes("Press Ctrl-C to stop."), chain, "its banner");
    expect(await runHealthcheck("chain", local)).toBe(0);
  }, 60_000);

  it("api: its health check fails before migrate has run and passes after; the worker's after it starts", async () => {
    // Storage is the minio service's bucket, on its stand-in (see localEnv).
    const db = { DATABASE_URL: database.url };
    const api = startProcess(services.api.command, localEnv("api", db));
    running.push(api.child);
    const healthz = local(`http://127.0.0.1:${serviceEnv("api").PORT}/healthz`);
    await until(
      async () => (await fetch(healthz).catch(() => null))?.ok ?? false,
      api,
      "listening",
    );
    // Listening but not migrated: /readyz is 503, so compose would not route to it yet.
    expect(await runHealthcheck("api", local)).toBe(1);

    const migrate = startProcess(services.migrate.command, localEnv("migrate", db));
    expect(await migrate.exited, migrate.output()).toBe(0);
    expect(await runHealthcheck("api", local)).toBe(0);

    expect(await runHealthcheck("worker", local)).toBe(1);
    const worker = startProcess(services.worker.command, localEnv("worker", db));
    running.push(worker.child);
    await until(
      async () => (await runHealthcheck("worker", local)) === 0,
      worker,
      "its health check passed",
    );
    expect(api.child.exitCode, api.output()).toBeNull();
    expect(worker.child.exitCode, worker.output()).toBeNull();

    // Production's shape end to end: the api takes a generation, the worker runs it (test mode's
    // sandbox channels) and stores the output in the bucket, and the api serves it back from there.
    const logger = createLogger(loadConfig({ NODE_ENV: "test", LOG_LEVEL: "warn" }));
    const client = createDatabaseClient(database.url, { poolMax: 2, logger });
    try {
      const ctx = createAppContext(
        loadConfig({ NODE_ENV: "test", DATABASE_URL: database.url, LOG_LEVEL: "warn" }),
        logger,
        client,
      );
      const { key } = await createFundedCaller(ctx, 100n, "test");
      const apiUrl = healthz.replace(/\/healthz$/, "");
      const auth = { authorization: `Bearer ${key}`, "content-type": "application/json" };
      const submitted = await fetch(`${apiUrl}/v1/generate`, {
        method: "POST",
        headers: auth,
        body: JSON.stringify({ prompt: "a lighthouse", models: ["gpt-image-2"] }),
      });
      expect(submitted.status, await submitted.clone().text()).toBe(202);
      const { generationId } = (await submitted.json()) as { generationId: string };
      let result: { status: string; imageUrl?: string } | undefined;
      await until(
        async () => {
          const status = await fetch(`${apiUrl}/v1/generate/status?ids=${generationId}`, {
            headers: auth,
          });
          const body = (await status.json()) as {
            generations: Record<string, { results: Array<{ status: string; imageUrl?: string }> }>;
          };
          result = body.generations[generationId]?.results[0];
          return result?.status === "completed";
        },
        worker,
        "the generation completed",
      );
      const stored = await store.object(`${generationId}/0-1.png`);
      expect(stored?.subarray(1, 4).toString()).toBe("PNG");
      const url = new URL(result?.imageUrl as string);
      const download = await fetch(`${apiUrl}${url.pathname}${url.search}`);
      expect(download.status).toBe(200);
      expect(Buffer.from(await download.arrayBuffer()).equals(stored as Buffer)).toBe(true);
    } finally {
      await client.close();
    }
  }, 120_000);
});
