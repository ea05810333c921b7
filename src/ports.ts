/**
 * The external systems the application talks to, as interfaces: the context carries them and
 * services reach the outside world only through them. Real and local implementations live with
 * their domains (local disk storage, provider adapters, the x402 gateway and its facilitators).
 * This file imports only leaf type modules that never import the context back, so `context.ts`
 * sits at the bottom of the import graph.
 */
import type { PaymentGateway } from "./domains/payments/gateway.js";
import type { Provider } from "./domains/providers/types.js";
import type { Channel, ProviderName } from "./domains/routing/channels.js";
import type { AttemptOutcome } from "./domains/routing/outcomes.js";
import type { RoutingPreferences } from "./domains/routing/preferences.js";
import type { Network } from "./lib/network.js";

export type { Notifications } from "./db/notifications.js";
export type { GenerationEvents } from "./domains/generations/events.js";
export type { InlineRuns } from "./domains/generations/inline.js";
export type { ApiKeyCache } from "./domains/keys/cache.js";
export type { Facilitator } from "./domains/payments/facilitator.js";
export type { Clock } from "./lib/clock.js";
export type { Channel, Provider, ProviderName };

/**
 * Where outputs and uploads live: local disk by default (storage/local.ts), or an S3-compatible
 * object store (storage/s3.ts). Keys are relative paths of `[\w.-]` segments.
 */
export interface Storage {
  put(key: string, bytes: Buffer): Promise<void>;
  /** The bytes, or undefined when nothing is stored under the key. */
  get(key: string): Promise<Buffer | undefined>;
  /** Removes the key; deleting one that is not there is not an error (sweeps run again). */
  delete(key: string): Promise<void>;
  /**
   * A URL that fetches the key's bytes straight from the store for `expiresInSeconds`, served
   * with `contentType`; only stores that can sign one (object storage) have it. A bearer
   * credential: never logged.
   */
  presignedUrl?(
    key: string,
    options: { expiresInSeconds: number; contentType: string },
  ): Promise<string>;
  /** Releases its connections at shutdown; closing twice is harmless. */
  close?(): void;
}

/** x402 on each network that takes payments: offers, the facilitator, the chain it watches. */
export type Payments = PaymentGateway;

export interface BreakerSettings {
  failureThreshold: number;
  cooldownMs: number;
  /** How long a half-open probe may take before it is presumed dead (≥ one upstream call). */
  probeTimeoutMs?: number;
}

export interface RoutingSettings {
  maxRetries: number;
  backoffMs: number;
  upstreamTimeoutMs: number;
  circuit: BreakerSettings;
}

/** The upstream providers and the ordered channels to them, with the retry and circuit rules. */
export interface RouteDeps {
  channels: readonly Channel[];
  /** Image and video adapters; a provider without one (anthropic) serves no such model. */
  providers: Partial<Record<ProviderName, Provider>>;
  settings: RoutingSettings;
  random?: () => number;
}

export interface Attempt {
  channel: string;
  outcome: AttemptOutcome;
  ms: number;
}

/** Recorded on every result: who served it, whether it failed over, and every try. */
export interface Routing {
  upstream: string | null;
  failover: boolean;
  attempts: Attempt[];
  /** The caller's routing preferences, when the request gave some. */
  preferences?: RoutingPreferences;
}

/**
 * What running a generation needs beyond the service context (which carries the storage): how
 * to route, and what other domains do in the transaction that settles a result (settlement.ts).
 */
export interface GenerationRuntime<Tx> {
  routing: RouteDeps;
  settlement: SettlementHooks<Tx>;
}

/* The settlement seam (see domains/generations/settlement.ts): what other domains do when one
 * of a generation's results settles. */

/** One model result that has just settled, as the settling transaction's hooks see it. */
export interface SettledResult {
  resultId: string;
  generationId: string;
  /** The account that generated, and pays. */
  accountId: string;
  network: Network;
  status: "completed" | "failed";
  /** Where the generation asked to be told that it finished (its webhook), if anywhere. */
  webhookUrl: string | null;
  /** Whether the generation applied style passes (whose royalties a completed result pays). */
  hasPasses: boolean;
  /**
   * Whether none of the generation's results is open any more. The first call locks the
   * generation's row, so of two results settling at once the second waits for the first to
   * commit and then sees it settled: exactly one of them sees the generation finished. Only
   * hooks that need it ask, so a generation nobody waits on is never locked.
   */
  generationFinished(): Promise<boolean>;
}

/**
 * Runs inside the settling transaction (`tx.db` is it; `Tx` is the service context, a type
 * parameter so that this file need not import the context that imports it): what it writes commits with the
 * settlement, and what it throws rolls the settlement back.
 */
export type SettlementHook<Tx> = (tx: Tx, settled: SettledResult) => Promise<void>;

export interface SettlementHooks<Tx> {
  /**
   * Right after the result's row settled (completed or failed), before its hold is posted or
   * voided; in registration order.
   */
  onResultSettled: readonly SettlementHook<Tx>[];
  /**
   * After a completed result's charge posted, in the same transaction: what the charge pays
   * for (royalties), so the result is charged with it or not at all.
   */
  onResultCharged: readonly SettlementHook<Tx>[];
}
