/**
 * The external systems the application talks to, as interfaces: the context carries them and
 * services reach the outside world only through them. Real and local implementations live with
 * their domains (local disk storage, provider adapters, the x402 gateway and its facilitators).
 * This file imports only leaf type modules that never import the context back, so `context.ts`
 * sits at the bottom of the import graph.
 */
import type { SettlementHooks } from "./domains/generations/settlement.js";
import type { PaymentGateway } from "./domains/payments/gateway.js";
import type { Provider } from "./domains/providers/types.js";
import type { Channel, ProviderName } from "./domains/routing/channels.js";
import type { AttemptOutcome } from "./domains/routing/outcomes.js";

export type { GenerationEvents } from "./domains/generations/events.js";
export type { Facilitator } from "./domains/payments/facilitator.js";
export type { Clock } from "./lib/clock.js";
export type { Channel, Provider, ProviderName };

/** Where outputs live. Local disk by default; an object store would implement the same port. */
export interface Storage {
  put(key: string, bytes: Buffer): Promise<void>;
  get(key: string): Promise<Buffer | undefined>;
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
  providers: Record<ProviderName, Provider>;
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
}

/**
 * What running a generation needs beyond the database: where outputs go, how to route, and
 * what other domains do in the transaction that settles a result (see settlement.ts).
 */
export interface GenerationRuntime {
  storage: Storage;
  routing: RouteDeps;
  settlement: SettlementHooks;
}
