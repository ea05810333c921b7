import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import path from "node:path";
import { z } from "zod";
import { USDC } from "./chain/networks.js";
import { type Channel, channelsSchema, defaultChannels } from "./domains/routing/channels.js";
import { creditUnits } from "./lib/credits.js";
import type { Network } from "./lib/network.js";

/**
 * Every environment variable the service reads, parsed once. Nothing else in the code reads
 * `process.env`: modules receive the parsed `Config`. Each variable carries a description,
 * which `.env.example` and the README's configuration table are checked against.
 */

const port = (fallback: number) => z.coerce.number().int().min(0).max(65_535).default(fallback);
/** Days something stored is kept; unset keeps it forever. */
const retentionDays = z.coerce.number().int().min(1).max(36_500).optional();
const positiveInt = (fallback: number, max: number) =>
  z.coerce.number().int().min(1).max(max).default(fallback);

const hexAddress = z.string().regex(/^0x[0-9a-fA-F]{40}$/, "an 0x-prefixed 20-byte address");
const privateKey = z.string().regex(/^0x[0-9a-fA-F]{64}$/, "a 0x-prefixed 32-byte private key");

/** The x402 variables of one network: X402_TEST_* for Base Sepolia, X402_LIVE_* for Base. */
function paymentVariables<P extends "TEST" | "LIVE">(prefix: P, chain: string) {
  const v = <K extends string>(key: K) => `X402_${prefix}_${key}` as const;
  return {
    [v("RPC_URL")]: z
      .url({ protocol: /^https?$/ })
      .optional()
      .describe(
        `JSON-RPC endpoint of ${chain}; setting it turns x402 payments on for that network. Start-up refuses an endpoint that reports another chain id. (polyforge dev starts a local chain when the test one is unset.)`,
      ),
    [v("PAY_TO")]: hexAddress
      .optional()
      .describe(`Treasury address that receives USDC payments on ${chain}.`),
    [v("FACILITATOR_URL")]: z
      .url({ protocol: /^https?$/ })
      .optional()
      .describe(
        `x402 facilitator for ${chain} (POST /verify, /settle; GET /supported). Never defaulted: a network without one takes no payments.`,
      ),
    [v("FACILITATOR_KEY")]: privateKey
      .optional()
      .describe(
        `Instead of a facilitator URL (development and tests only): the private key of an in-process facilitator that settles on ${chain} itself.`,
      ),
    [v("USDC_ADDRESS")]: hexAddress
      .optional()
      .describe(`USDC contract on ${chain}; defaults to the real one.`),
    [v("START_BLOCK")]: z.coerce
      .bigint()
      .min(0n)
      .default(0n)
      .describe(`First block the payment reconciliation scans on ${chain}.`),
  } as {
    [K in `X402_${P}_RPC_URL` | `X402_${P}_FACILITATOR_URL`]: z.ZodOptional<z.ZodURL>;
  } & {
    [K in
      | `X402_${P}_PAY_TO`
      | `X402_${P}_FACILITATOR_KEY`
      | `X402_${P}_USDC_ADDRESS`]: z.ZodOptional<z.ZodString>;
  } & { [K in `X402_${P}_START_BLOCK`]: z.ZodDefault<z.ZodCoercedBigInt> };
}

export const configSchema = z
  .object({
    NODE_ENV: z
      .enum(["development", "test", "production"])
      .default("development")
      .describe(
        "development, test or production; production requires DATABASE_URL and PUBLIC_URL.",
      ),
    HOST: z
      .string()
      .min(1)
      .default("127.0.0.1")
      .describe("Interface the HTTP server listens on (0.0.0.0 in containers)."),
    PORT: port(3000).describe("HTTP port (0 takes any free port; then set PUBLIC_URL too)."),
    PUBLIC_URL: z
      .url({ protocol: /^https?$/ })
      .optional()
      .describe(
        "Base URL clients reach the API at; also the domain wallet sign-in messages must name. Defaults to http://localhost:PORT.",
      ),
    DATABASE_URL: z
      .url({ protocol: /^postgres(ql)?$/ })
      .optional()
      .describe(
        "PostgreSQL connection string. When unset (development only), an embedded PostgreSQL is started with its data under POLYFORGE_DATA_DIR.",
      ),
    DATABASE_POOL_MAX: positiveInt(10, 500).describe(
      "Connections per process in the pool, the ones kept for LISTEN and a worker's heartbeat included (a worker needs at least 3).",
    ),
    POLYFORGE_DATA_DIR: z
      .string()
      .min(1)
      .default(".polyforge")
      .describe("Local state for development: embedded PostgreSQL data and the demo key."),
    EMBEDDED_POSTGRES_PORT: port(54_320).describe("Port of the embedded PostgreSQL (development)."),
    LOCAL_CHAIN_PORT: port(8545).describe(
      "Port of the local anvil chain that polyforge dev and polyforge chain start (0 takes any free port).",
    ),
    LOG_LEVEL: z
      .enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"])
      .default("info")
      .describe("pino log level."),
    SESSION_TTL_SECONDS: positiveInt(3600, 7 * 24 * 3600).describe(
      "Lifetime of a wallet sign-in session token.",
    ),
    SIWE_NONCE_TTL_SECONDS: positiveInt(300, 3600).describe(
      "Lifetime of a sign-in nonce; each nonce is single use.",
    ),
    API_KEY_CACHE_SECONDS: z.coerce
      .number()
      .int()
      .min(0)
      .max(300)
      .default(30)
      .describe(
        "How long an API process may reuse an API key it has looked up, without reading it again (a backstop: a revoked key is refused at once on the revoking process and within a second on the others, through LISTEN/NOTIFY). 0 reads every key from PostgreSQL on every request.",
      ),
    API_KEY_CACHE_SIZE: positiveInt(10_000, 1_000_000).describe(
      "How many API keys one API process keeps cached at most; the least recently used go first.",
    ),
    WORKER_CONCURRENCY: positiveInt(1000, 10_000).describe(
      "Jobs one worker process runs at once. A job waiting on its upstream holds no database connection, so this is far above DATABASE_POOL_MAX: the pool bounds the connections, and each job takes one only for its short statements.",
    ),
    WORKER_DATABASE_WAIT_MS: positiveInt(30_000, 600_000).describe(
      "How long a statement of `polyforge worker` waits for one of the pool's connections (or for a new one to open) before it fails and its job is retried later. The API waits 5 s, so a database that does not answer fails requests fast; a worker's jobs take turns on the pool, at most WORKER_CONCURRENCY of them, so on a busy but healthy database they wait longer rather than fail and call their upstream again.",
    ),
    WORKER_HEARTBEAT_SECONDS: positiveInt(5, 300).describe(
      "How often each worker process records that it is alive, in PostgreSQL.",
    ),
    WORKER_DEAD_AFTER_SECONDS: positiveInt(20, 3600).describe(
      "A worker whose heartbeat is older than this is presumed dead (killed, crashed, cut off): a live worker releases its jobs, which run again at once. At least twice WORKER_HEARTBEAT_SECONDS; the same value on every process.",
    ),
    WORKER_METRICS_PORT: z.coerce
      .number()
      .int()
      .min(0)
      .max(65_535)
      .optional()
      .describe(
        "Port on HOST where `polyforge worker` serves GET /metrics (Prometheus). Unset: the worker serves nothing. The API serves /metrics on PORT (and `polyforge dev` the worker's too).",
      ),
    METRICS_TOKEN: z
      .string()
      .min(16, "at least 16 characters")
      .optional()
      .describe(
        "When set, GET /metrics (API and worker) requires `Authorization: Bearer <token>`; unset, it is open to whoever reaches the port.",
      ),
    SHUTDOWN_TIMEOUT_MS: positiveInt(10_000, 600_000).describe(
      "How long a graceful shutdown waits for in-flight requests and jobs.",
    ),
    STORAGE_DIR: z
      .string()
      .min(1)
      .optional()
      .describe(
        "Where generated outputs and uploads are stored on local disk when STORAGE_URL is unset. Defaults to POLYFORGE_DATA_DIR/outputs.",
      ),
    STORAGE_URL: z
      .string()
      .regex(
        /^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/[\w./-]*)?$/,
        "s3://bucket or s3://bucket/prefix",
      )
      .optional()
      .describe(
        "Object storage for outputs and uploads instead of STORAGE_DIR: s3://bucket/prefix on any S3-compatible store (AWS S3, R2, MinIO, Backblaze B2). Every API and worker process then shares it; unset, files go to STORAGE_DIR on local disk.",
      ),
    STORAGE_S3_ENDPOINT: z
      .url({ protocol: /^https?$/ })
      .optional()
      .describe(
        "The S3 API endpoint when it is not AWS's (R2, MinIO, Backblaze B2). Unset: AWS S3 in STORAGE_S3_REGION.",
      ),
    STORAGE_S3_REGION: z
      .string()
      .min(1)
      .default("us-east-1")
      .describe("The bucket's region (R2 takes `auto`)."),
    STORAGE_S3_ACCESS_KEY_ID: z
      .string()
      .min(1)
      .optional()
      .describe(
        "Access key of the object store; with STORAGE_S3_SECRET_ACCESS_KEY. Unset: the AWS SDK's default chain (AWS_* variables, shared config, instance or task role).",
      ),
    STORAGE_S3_SECRET_ACCESS_KEY: z
      .string()
      .min(1)
      .optional()
      .describe("Secret of STORAGE_S3_ACCESS_KEY_ID. Never logged."),
    STORAGE_S3_PATH_STYLE: z
      .enum(["on", "off"])
      .default("off")
      .describe(
        "`on` addresses the bucket in the path (endpoint/bucket/key) rather than the host name, as MinIO and most self-hosted stores need.",
      ),
    STORAGE_DOWNLOADS: z
      .enum(["proxy", "presigned"])
      .default("proxy")
      .describe(
        "How output and upload downloads are served: `proxy` streams the bytes through the API; `presigned` (object storage only) answers 302 to a presigned URL of the object, so the bytes come from the store.",
      ),
    STORAGE_PRESIGNED_TTL_SECONDS: positiveInt(300, 7 * 24 * 3600).describe(
      "How long a presigned download URL (STORAGE_DOWNLOADS=presigned) stays valid. Each download hands out a fresh one.",
    ),
    OUTPUT_RETENTION_DAYS: retentionDays.describe(
      "Days a generation's output is kept after it finished; older outputs are deleted from storage by the hourly outputs_retention task, and their downloads answer 410 output_expired. Unset: outputs are kept forever.",
    ),
    CHANNELS: z
      .string()
      .optional()
      .describe(
        'Upstream channels as JSON: [{id, provider (sandbox|openai|anthropic|fal|replicate), baseUrl, apiKey, networks, models, priority, weight, cost (optional: what a call costs upstream, for a caller\'s `sort: "price"`)}]. Defaults to two sandbox channels for test mode.',
      ),
    RATE_LIMITS: z
      .enum(["on", "off"])
      .default("on")
      .describe(
        "Per-minute request limits by membership tier (generate, batch, poll), shared by every API process through PostgreSQL. `off` is for load tests only.",
      ),
    MAX_IN_FLIGHT_GENERATIONS: positiveInt(50, 100_000).describe(
      "How many generations one account may have waiting or running on a network at once; more are refused with 429 too_many_in_flight.",
    ),
    ROYALTY_PLATFORM_SHARE_BPS: z.coerce
      .number()
      .int()
      .min(0)
      .max(10_000)
      .default(2000)
      .describe(
        "The platform's share of every style pass fee, in basis points (2000 = 20%); the creator earns the rest, rounded down to the ledger's unit (1/10,000 credit).",
      ),
    TRUST_PROXY: z.coerce
      .number()
      .int()
      .min(0)
      .max(10)
      .default(0)
      .describe(
        "How many reverse proxies in front of the API to trust for the client address (X-Forwarded-For), which limits unauthenticated requests per IP. 0 trusts none.",
      ),
    GENERATION_TIMEOUT_SECONDS: positiveInt(900, 24 * 3600).describe(
      "How long one model's result may take, its retries after a worker crash included, before its hold expires and it is refunded (the hard stop: a result still running then is refunded and its late output dropped).",
    ),
    UPSTREAM_TIMEOUT_MS: positiveInt(120_000, 3_600_000).describe(
      "One upstream call's time limit.",
    ),
    IMAGES_WAIT_MS: z.coerce
      .number()
      .int()
      .min(0)
      .max(600_000)
      .default(60_000)
      .describe("How long POST /v1/images/generations waits for its images before answering 202."),
    IMAGES_EARLY_HINTS: z
      .enum(["on", "off"])
      .default("on")
      .describe(
        "Whether POST /v1/images/generations sends the generation ids in a `103 Early Hints` answer before it waits. `off` is for a proxy or load tester in front of the API that takes a 1xx answer for the final one (the final answer carries X-Generation-Id either way).",
      ),
    INLINE_LEASE_SECONDS: positiveInt(15, 600).describe(
      "A generation the API process runs itself (the synchronous doors) keeps its queued job from the workers for this long, renewed while it runs: if the process dies, a worker resumes the generation after at most this.",
    ),
    ROUTING_MAX_RETRIES: z.coerce
      .number()
      .int()
      .min(0)
      .max(10)
      .default(2)
      .describe("Retries on one channel after a retryable failure, before failing over."),
    ROUTING_BACKOFF_MS: positiveInt(250, 60_000).describe(
      "Base of the exponential backoff between retries (with jitter).",
    ),
    CIRCUIT_FAILURE_THRESHOLD: positiveInt(5, 1000).describe(
      "Consecutive failures that open a channel's circuit.",
    ),
    CIRCUIT_COOLDOWN_SECONDS: positiveInt(30, 24 * 3600).describe(
      "How long an open circuit waits before one probe.",
    ),
    URL_SIGNING_SECRET: z
      .string()
      .min(32, "at least 32 characters")
      .optional()
      .describe(
        "Key that signs public download URLs (outputs, re-hosted reference images). Required in production and shared by every instance; otherwise a random one per process.",
      ),
    WEBHOOK_TIMEOUT_MS: positiveInt(10_000, 60_000).describe(
      "How long one webhook delivery waits for the receiver's answer.",
    ),
    WEBHOOK_RETRY_BASE_MS: positiveInt(5_000, 3_600_000).describe(
      "First webhook retry delay; each next one is 4 times longer, capped at 12 hours: with the default, 11 attempts span about 43 hours.",
    ),
    POLYFORGE_API_URL: z
      .url({ protocol: /^https?$/ })
      .default("http://localhost:3000")
      .describe("The API that `polyforge mcp` (the MCP server over stdio) talks to."),
    POLYFORGE_API_KEY: z
      .string()
      .optional()
      .describe("The API key `polyforge mcp` uses (sk_test_… or sk_live_…)."),
    ...paymentVariables("TEST", "Base Sepolia (test keys)"),
    ...paymentVariables("LIVE", "Base mainnet (live keys)"),
    X402_SETTLE_TIMEOUT_MS: positiveInt(30_000, 600_000).describe(
      "How long a settlement waits for its transaction receipt before it is recorded as pending and left to reconciliation.",
    ),
    X402_VALIDITY_SECONDS: positiveInt(300, 3600).describe(
      "How long a payment authorization asked for in a 402 stays valid (maxTimeoutSeconds).",
    ),
    PAYOUT_TEST_KEY: privateKey
      .optional()
      .describe(
        "Private key of the treasury wallet that sends creator payouts in USDC on Base Sepolia (over X402_TEST_RPC_URL); unset, test payouts are refused with 503 payouts_unavailable. polyforge dev sets it for its local chain.",
      ),
    PAYOUT_LIVE_KEY: privateKey
      .optional()
      .describe(
        "Private key of the treasury wallet that sends creator payouts in USDC on Base (over X402_LIVE_RPC_URL); unset, live payouts are refused with 503 payouts_unavailable.",
      ),
    PAYOUT_MIN_CREDITS: positiveInt(1000, 100_000_000).describe(
      "The smallest payout of earnings, in credits (1,000 credits = $10).",
    ),
    PAYOUT_RECEIPT_TIMEOUT_MS: positiveInt(30_000, 600_000).describe(
      "How long POST /v1/profile/payouts waits for its transaction's receipt before answering 202; reconciliation finishes it later.",
    ),
    SSRF_ALLOW_HOSTS: z
      .string()
      .optional()
      .describe(
        "Comma-separated host:port pairs exempt from the SSRF address check, for local test fixtures only. Refused in production.",
      ),
  })
  .superRefine((env, ctx) => {
    if (env.WORKER_DEAD_AFTER_SECONDS < 2 * env.WORKER_HEARTBEAT_SECONDS) {
      // One late heartbeat must not make a live worker look dead.
      ctx.addIssue({
        code: "custom",
        path: ["WORKER_DEAD_AFTER_SECONDS"],
        message: "must be at least twice WORKER_HEARTBEAT_SECONDS",
      });
    }
    for (const prefix of ["TEST", "LIVE"] as const) {
      const rpc = env[`X402_${prefix}_RPC_URL`];
      const url = env[`X402_${prefix}_FACILITATOR_URL`];
      const key = env[`X402_${prefix}_FACILITATOR_KEY`];
      const problem: [string, string] | undefined = !rpc
        ? undefined
        : !env[`X402_${prefix}_PAY_TO`]
          ? [`X402_${prefix}_PAY_TO`, "required when the network's RPC URL is set"]
          : !url === !key
            ? [
                `X402_${prefix}_FACILITATOR_URL`,
                "set exactly one of the facilitator URL and the facilitator key",
              ]
            : undefined;
      if (problem) ctx.addIssue({ code: "custom", path: [problem[0]], message: problem[1] });
      const payoutKey = env[`PAYOUT_${prefix}_KEY`];
      if (payoutKey && key && payoutKey.toLowerCase() === key.toLowerCase()) {
        // Two senders of one key, each serializing its own nonces only, would collide.
        ctx.addIssue({
          code: "custom",
          path: [`PAYOUT_${prefix}_KEY`],
          message: "must not be the facilitator's key",
        });
      }
      // polyforge dev brings its own test chain; anywhere else a payout key needs an RPC.
      const devChain = prefix === "TEST" && env.NODE_ENV !== "production";
      if (payoutKey && !rpc && !devChain) {
        ctx.addIssue({
          code: "custom",
          path: [`PAYOUT_${prefix}_KEY`],
          message: `needs X402_${prefix}_RPC_URL (payouts are sent over it)`,
        });
      }
    }
    if (!env.STORAGE_S3_ACCESS_KEY_ID !== !env.STORAGE_S3_SECRET_ACCESS_KEY) {
      ctx.addIssue({
        code: "custom",
        path: ["STORAGE_S3_SECRET_ACCESS_KEY"],
        message: "set both STORAGE_S3_ACCESS_KEY_ID and STORAGE_S3_SECRET_ACCESS_KEY, or neither",
      });
    }
    if (env.STORAGE_DOWNLOADS === "presigned" && !env.STORAGE_URL) {
      ctx.addIssue({
        code: "custom",
        path: ["STORAGE_DOWNLOADS"],
        message: "presigned needs object storage (STORAGE_URL)",
      });
    }
    if (env.NODE_ENV !== "production") return;
    if (env.SSRF_ALLOW_HOSTS) {
      ctx.addIssue({
        code: "custom",
        path: ["SSRF_ALLOW_HOSTS"],
        message: "not allowed when NODE_ENV=production",
      });
    }
    for (const prefix of ["TEST", "LIVE"] as const) {
      if (env[`X402_${prefix}_FACILITATOR_KEY`]) {
        ctx.addIssue({
          code: "custom",
          path: [`X402_${prefix}_FACILITATOR_KEY`],
          message: "not allowed when NODE_ENV=production: set a facilitator URL",
        });
      }
    }
    for (const key of ["DATABASE_URL", "PUBLIC_URL", "URL_SIGNING_SECRET"] as const) {
      if (!env[key]) {
        ctx.addIssue({ code: "custom", path: [key], message: "required when NODE_ENV=production" });
      }
    }
  });

export type ConfigEnv = z.infer<typeof configSchema>;

export interface Config {
  env: ConfigEnv["NODE_ENV"];
  http: {
    host: string;
    port: number;
    publicUrl: string;
    shutdownTimeoutMs: number;
    /** Proxy hops trusted for the client address (express's `trust proxy`). */
    trustProxy: number;
  };
  rateLimits: { enabled: boolean; maxInFlightGenerations: number };
  /** Style pass royalties: the platform keeps this share of each fee, in basis points. */
  creators: { platformShareBps: number };
  database: { url: string | undefined; poolMax: number };
  embeddedPostgres: { dataDir: string; port: number };
  /**
   * The anvil chain of `polyforge dev` and `polyforge chain`, where its state is kept, and where
   * a running `polyforge dev` records it for the other commands (src/chain/dev-chain.ts).
   */
  localChain: { port: number; statePath: string; devRecordPath: string };
  dataDir: string;
  logLevel: ConfigEnv["LOG_LEVEL"];
  auth: {
    sessionTtlSeconds: number;
    siweNonceTtlSeconds: number;
    siweDomain: string;
    /** The API key cache of each API process (src/domains/keys/cache.ts); ttlMs 0 turns it off. */
    apiKeyCache: { ttlMs: number; maxEntries: number };
  };
  /**
   * Jobs one process runs at once; how long `polyforge worker` waits for a pool connection;
   * how often it records its heartbeat, and how old another's may get before that worker is
   * presumed dead and its jobs are released.
   */
  worker: { concurrency: number; databaseWaitMs: number; heartbeatMs: number; deadAfterMs: number };
  /** Prometheus metrics: the worker's own listener (undefined: none) and the scrape token. */
  metrics: { workerPort: number | undefined; token: string | undefined };
  /** Local disk (STORAGE_DIR) unless object storage is configured. */
  storageDir: string;
  storage: StorageConfig;
  channels: Channel[];
  generation: {
    timeoutSeconds: number;
    upstreamTimeoutMs: number;
    imagesWaitMs: number;
    /** Whether the images door sends its generation ids in a 103 before the wait. */
    imagesEarlyHints: boolean;
    inlineLeaseMs: number;
    maxRetries: number;
    backoffMs: number;
    circuit: { failureThreshold: number; cooldownMs: number };
  };
  urlSigningSecret: string;
  webhooks: { timeoutMs: number; retryBaseMs: number };
  /** host:port pairs the SSRF guard lets through (local fixtures in tests; empty in production). */
  ssrfAllowHosts: string[];
  payments: PaymentsConfig;
  payouts: PayoutsConfig;
  /** What `polyforge mcp` talks to. */
  mcp: { apiUrl: string; apiKey: string | undefined };
}

/** Where stored files go, how downloads are served, and how long outputs are kept. */
export interface StorageConfig {
  /** Set when STORAGE_URL names a bucket; otherwise files go to `storageDir`. */
  s3: S3StorageConfig | undefined;
  downloads: "proxy" | "presigned";
  presignedTtlSeconds: number;
  /** Days an output is kept after it finished; undefined keeps outputs forever. */
  outputRetentionDays: number | undefined;
}

export interface S3StorageConfig {
  bucket: string;
  /** Prepended to every key ("" or ending in "/"). */
  prefix: string;
  endpoint: string | undefined;
  region: string;
  /** Undefined: the AWS SDK's default credential chain. Never logged. */
  credentials: { accessKeyId: string; secretAccessKey: string } | undefined;
  pathStyle: boolean;
}

function s3Storage(e: ConfigEnv): S3StorageConfig | undefined {
  if (!e.STORAGE_URL) return undefined;
  const [bucket = "", ...rest] = e.STORAGE_URL.slice("s3://".length).split("/");
  const prefix = rest.filter(Boolean).join("/");
  return {
    bucket,
    prefix: prefix ? `${prefix}/` : "",
    endpoint: e.STORAGE_S3_ENDPOINT,
    region: e.STORAGE_S3_REGION,
    credentials:
      e.STORAGE_S3_ACCESS_KEY_ID && e.STORAGE_S3_SECRET_ACCESS_KEY
        ? {
            accessKeyId: e.STORAGE_S3_ACCESS_KEY_ID,
            secretAccessKey: e.STORAGE_S3_SECRET_ACCESS_KEY,
          }
        : undefined,
    pathStyle: e.STORAGE_S3_PATH_STYLE === "on",
  };
}

/** How one network takes x402 payments. */
export interface NetworkPaymentConfig {
  rpcUrl: string;
  payTo: `0x${string}`;
  usdcAddress: `0x${string}`;
  facilitator: { url: string } | { privateKey: `0x${string}` };
  startBlock: bigint;
}

export interface PaymentsConfig {
  networks: Partial<Record<Network, NetworkPaymentConfig>>;
  settleTimeoutMs: number;
  validitySeconds: number;
}

function networkPayments(e: ConfigEnv, prefix: "TEST" | "LIVE", network: Network) {
  const rpcUrl = e[`X402_${prefix}_RPC_URL`];
  const payTo = e[`X402_${prefix}_PAY_TO`];
  if (!rpcUrl || !payTo) return undefined;
  const url = e[`X402_${prefix}_FACILITATOR_URL`];
  const key = e[`X402_${prefix}_FACILITATOR_KEY`];
  return {
    rpcUrl,
    payTo: payTo as `0x${string}`,
    usdcAddress: (e[`X402_${prefix}_USDC_ADDRESS`] ?? USDC[network].address) as `0x${string}`,
    facilitator: url ? { url } : { privateKey: key as `0x${string}` },
    startBlock: e[`X402_${prefix}_START_BLOCK`],
  } satisfies NetworkPaymentConfig;
}

/**
 * Creator payouts: USDC sent from a treasury key over the network's payment RPC. A network
 * without a key (or without payments) makes no payouts.
 */
export interface PayoutsConfig {
  /** The treasury's signing key per network. Never logged. */
  keys: Partial<Record<Network, `0x${string}`>>;
  minCredits: bigint;
  receiptTimeoutMs: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

/** Parses an environment; throws one ConfigError naming every offending variable. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  // An empty variable (`PORT=`) means "not set", as in most shells' .env conventions.
  const present = Object.fromEntries(
    Object.entries(env).filter(([, value]) => value !== undefined && value !== ""),
  );
  const parsed = configSchema.safeParse(present);
  if (!parsed.success) {
    // Values are never echoed: some variables (DATABASE_URL) carry secrets.
    throw new ConfigError(
      parsed.error.issues.map((issue) => `${issue.path.join(".") || "(root)"}: ${issue.message}`),
    );
  }
  const e = parsed.data;
  const channels = parseChannels(e.CHANNELS);
  const publicUrl = (e.PUBLIC_URL ?? `http://localhost:${e.PORT}`).replace(/\/+$/, "");
  const dataDir = path.resolve(e.POLYFORGE_DATA_DIR);
  return {
    env: e.NODE_ENV,
    http: {
      host: e.HOST,
      port: e.PORT,
      publicUrl,
      shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
      trustProxy: e.TRUST_PROXY,
    },
    rateLimits: {
      enabled: e.RATE_LIMITS === "on",
      maxInFlightGenerations: e.MAX_IN_FLIGHT_GENERATIONS,
    },
    creators: { platformShareBps: e.ROYALTY_PLATFORM_SHARE_BPS },
    database: { url: e.DATABASE_URL, poolMax: e.DATABASE_POOL_MAX },
    embeddedPostgres: { dataDir: path.join(dataDir, "postgres"), port: e.EMBEDDED_POSTGRES_PORT },
    localChain: {
      port: e.LOCAL_CHAIN_PORT,
      statePath: path.join(dataDir, "chain-state.json"),
      devRecordPath: path.join(dataDir, "dev-chain.json"),
    },
    dataDir,
    logLevel: e.LOG_LEVEL,
    auth: {
      sessionTtlSeconds: e.SESSION_TTL_SECONDS,
      siweNonceTtlSeconds: e.SIWE_NONCE_TTL_SECONDS,
      siweDomain: new URL(publicUrl).host,
      apiKeyCache: { ttlMs: e.API_KEY_CACHE_SECONDS * 1000, maxEntries: e.API_KEY_CACHE_SIZE },
    },
    worker: {
      concurrency: e.WORKER_CONCURRENCY,
      databaseWaitMs: e.WORKER_DATABASE_WAIT_MS,
      heartbeatMs: e.WORKER_HEARTBEAT_SECONDS * 1000,
      deadAfterMs: e.WORKER_DEAD_AFTER_SECONDS * 1000,
    },
    metrics: { workerPort: e.WORKER_METRICS_PORT, token: e.METRICS_TOKEN },
    storageDir: path.resolve(e.STORAGE_DIR ?? path.join(dataDir, "outputs")),
    storage: {
      s3: s3Storage(e),
      downloads: e.STORAGE_DOWNLOADS,
      presignedTtlSeconds: e.STORAGE_PRESIGNED_TTL_SECONDS,
      outputRetentionDays: e.OUTPUT_RETENTION_DAYS,
    },
    channels,
    urlSigningSecret: e.URL_SIGNING_SECRET ?? randomBytes(32).toString("base64url"),
    webhooks: { timeoutMs: e.WEBHOOK_TIMEOUT_MS, retryBaseMs: e.WEBHOOK_RETRY_BASE_MS },
    ssrfAllowHosts: (e.SSRF_ALLOW_HOSTS ?? "")
      .split(",")
      .map((h) => h.trim())
      .filter(Boolean),
    mcp: { apiUrl: e.POLYFORGE_API_URL, apiKey: e.POLYFORGE_API_KEY },
    payments: {
      networks: Object.fromEntries(
        (["test", "live"] as const).flatMap((network) => {
          const config = networkPayments(e, network === "test" ? "TEST" : "LIVE", network);
          return config ? [[network, config]] : [];
        }),
      ),
      settleTimeoutMs: e.X402_SETTLE_TIMEOUT_MS,
      validitySeconds: e.X402_VALIDITY_SECONDS,
    },
    payouts: {
      keys: {
        ...(e.PAYOUT_TEST_KEY && { test: e.PAYOUT_TEST_KEY as `0x${string}` }),
        ...(e.PAYOUT_LIVE_KEY && { live: e.PAYOUT_LIVE_KEY as `0x${string}` }),
      },
      minCredits: creditUnits(e.PAYOUT_MIN_CREDITS),
      receiptTimeoutMs: e.PAYOUT_RECEIPT_TIMEOUT_MS,
    },
    generation: {
      timeoutSeconds: e.GENERATION_TIMEOUT_SECONDS,
      upstreamTimeoutMs: e.UPSTREAM_TIMEOUT_MS,
      imagesWaitMs: e.IMAGES_WAIT_MS,
      imagesEarlyHints: e.IMAGES_EARLY_HINTS === "on",
      inlineLeaseMs: e.INLINE_LEASE_SECONDS * 1000,
      maxRetries: e.ROUTING_MAX_RETRIES,
      backoffMs: e.ROUTING_BACKOFF_MS,
      circuit: {
        failureThreshold: e.CIRCUIT_FAILURE_THRESHOLD,
        cooldownMs: e.CIRCUIT_COOLDOWN_SECONDS * 1000,
      },
    },
  };
}

function parseChannels(raw: string | undefined): Channel[] {
  if (raw === undefined) return defaultChannels;
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new ConfigError(["CHANNELS: not valid JSON"]);
  }
  const parsed = channelsSchema.safeParse(json);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map(
        (i) => `CHANNELS${i.path.length ? `[${i.path.join(".")}]` : ""}: ${i.message}`,
      ),
    );
  }
  return parsed.data;
}

/** The process environment, with a `.env` file in the working directory applied underneath. */
export function processEnv(): Record<string, string | undefined> {
  if (existsSync(".env")) process.loadEnvFile(".env");
  return process.env;
}
