import { x402ResourceServer } from "@x402/core/server";
import {
  type PaymentPayload,
  type PaymentRequired,
  type PaymentRequirements,
  type SettleResponse,
  VerifyError,
  type VerifyResponse,
} from "@x402/core/types";
import { registerExactEvmScheme } from "@x402/evm/exact/server";
import { createPublicClient, http, type PublicClient } from "viem";
import { USDC } from "../../chain/networks.js";
import { ConfigError, type NetworkPaymentConfig, type PaymentsConfig } from "../../config.js";
import { AppError } from "../../errors.js";
import type { Network } from "../../lib/network.js";
import type { Logger } from "../../logger.js";
import { type Facilitator, facilitatorFor } from "./facilitator.js";

/** What the caller is asked to pay on one network, in USDC base units. */
export interface PaymentOffer {
  network: Network;
  requirements: PaymentRequirements;
}

const caip2Of = (network: Network) => USDC[network].caip2;

export const networkOfCaip2 = (caip2: string): Network | undefined =>
  (Object.keys(USDC) as Network[]).find((n) => USDC[n].caip2 === caip2);

const unavailable = (network: Network, why: string, cause?: unknown) =>
  new AppError(
    "payments_unavailable",
    `Payments on ${network === "live" ? "Base" : "Base Sepolia"} are unavailable: ${why}. Nothing was charged.`,
    { network },
    { cause },
  );

/** Whether a configured network takes payments now; see PaymentGateway.watchChain. */
export type PaymentNetworkState = "available" | "unavailable";

/** How often a chain whose RPC did not answer is asked again: doubling up to the cap. */
const CHAIN_RETRY = { minMs: 500, maxMs: 10_000 };

/**
 * x402 on each configured network: one resource server per network, each with only that
 * network's facilitator, so a payment can only ever be verified and settled where it was asked
 * for. The x402 client library would default to a public facilitator on the internet; ours is
 * always given explicitly. Servers are initialized (the facilitator's /supported) on first use
 * and again after a failure, so a facilitator that is down at start-up does not stop the API.
 */
export class PaymentGateway {
  private readonly servers = new Map<Network, Promise<x402ResourceServer>>();
  private readonly facilitators = new Map<Network, Facilitator>();
  private readonly chains = new Map<Network, PublicClient>();
  /** Networks whose chain has not (yet) answered with its chain id: they take no payment. */
  private readonly unverified = new Map<Network, string>();

  constructor(
    readonly config: PaymentsConfig,
    private readonly logger: Logger,
  ) {}

  networks(): Network[] {
    return Object.keys(this.config.networks) as Network[];
  }

  networkConfig(network: Network): NetworkPaymentConfig {
    const config = this.config.networks[network];
    if (!config) throw unavailable(network, "this deployment takes no payments on that network");
    return config;
  }

  /** Each configured network's state, for /readyz. */
  states(): Partial<Record<Network, PaymentNetworkState>> {
    return Object.fromEntries(
      this.networks().map((n) => [n, this.unverified.has(n) ? "unavailable" : "available"]),
    );
  }

  /**
   * A network whose RPC did not answer at start-up: its payments are refused (503
   * payments_unavailable) while its chain is asked again in the background, and taken once it
   * answers with the network's chain id. Everything else of the process (keyed traffic) runs
   * meanwhile. An RPC that turns out to be another chain stays refused, logged as the
   * configuration error it is (a restart then refuses to start, as with any wrong chain id).
   */
  watchChain(network: Network): void {
    if (this.unverified.has(network)) return;
    this.unverified.set(network, "the chain's RPC does not answer");
    const expected = USDC[network].chainId;
    const attempt = async (n: number) => {
      let reported: number;
      try {
        reported = await this.chain(network).getChainId();
      } catch {
        setTimeout(attempt, Math.min(CHAIN_RETRY.maxMs, CHAIN_RETRY.minMs * 2 ** n), n + 1).unref();
        return;
      }
      if (reported !== expected) {
        const err = new ConfigError([
          `X402_${network.toUpperCase()}_RPC_URL: the RPC reports chain id ${reported}, but ${network} payments are on chain ${expected}`,
        ]);
        this.unverified.set(network, "the configured RPC is another chain");
        this.logger.error({ err, network }, "payments stay unavailable: the RPC is another chain");
        return;
      }
      this.unverified.delete(network);
      this.logger.info({ network }, "the chain's RPC answers: payments available");
    };
    void attempt(0);
  }

  /** A read-only client of the network's chain (reconciliation, pending settlements). */
  chain(network: Network): PublicClient {
    let client = this.chains.get(network);
    if (!client) {
      client = createPublicClient({ transport: http(this.networkConfig(network).rpcUrl) });
      this.chains.set(network, client);
    }
    return client;
  }

  private facilitator(network: Network): Facilitator {
    let facilitator = this.facilitators.get(network);
    if (!facilitator) {
      facilitator = facilitatorFor(
        this.networkConfig(network),
        { chainId: USDC[network].chainId, caip2: caip2Of(network) },
        this.config.settleTimeoutMs,
      );
      this.facilitators.set(network, facilitator);
    }
    return facilitator;
  }

  private server(network: Network): Promise<x402ResourceServer> {
    const why = this.unverified.get(network);
    if (why) return Promise.reject(unavailable(network, why));
    let server = this.servers.get(network);
    if (!server) {
      const created = registerExactEvmScheme(new x402ResourceServer(this.facilitator(network)), {
        networks: [caip2Of(network)],
      });
      server = created.initialize().then(
        () => created,
        (err: unknown) => {
          this.servers.delete(network);
          this.logger.warn({ err, network }, "x402 facilitator unreachable");
          throw unavailable(network, "the payment facilitator cannot be reached", err);
        },
      );
      this.servers.set(network, server);
    }
    return server;
  }

  /** The requirement for `amount` USDC base units on `network`, paid to its treasury. */
  async offer(network: Network, amount: bigint): Promise<PaymentOffer> {
    const config = this.networkConfig(network);
    const server = await this.server(network);
    const [requirements] = await server.buildPaymentRequirements({
      scheme: "exact",
      network: caip2Of(network),
      payTo: config.payTo,
      price: {
        asset: config.usdcAddress,
        amount: amount.toString(),
        extra: { name: USDC[network].name, version: USDC[network].version },
      },
      maxTimeoutSeconds: this.config.validitySeconds,
    });
    if (!requirements) throw unavailable(network, "no payment requirement could be built");
    return { network, requirements };
  }

  async paymentRequired(
    offers: PaymentOffer[],
    resource: { url: string; description: string },
    error?: string,
  ): Promise<PaymentRequired> {
    const first = offers[0];
    if (!first) throw new Error("a payment is required but nothing is offered");
    const server = await this.server(first.network);
    return server.createPaymentRequiredResponse(
      offers.map((o) => o.requirements),
      { url: resource.url, description: resource.description, mimeType: "application/json" },
      error,
    );
  }

  /** The offer the payload accepted, exactly as we made it; undefined for any other. */
  async match(offers: PaymentOffer[], payload: PaymentPayload): Promise<PaymentOffer | undefined> {
    for (const offer of offers) {
      const server = await this.server(offer.network);
      if (server.findMatchingRequirements([offer.requirements], payload)) return offer;
    }
    return undefined;
  }

  async verify(offer: PaymentOffer, payload: PaymentPayload): Promise<VerifyResponse> {
    const server = await this.server(offer.network);
    try {
      return await server.verifyPayment(payload, offer.requirements);
    } catch (err) {
      // An HTTP facilitator answers a refused payment with a 4xx, which its client throws.
      if (err instanceof VerifyError && err.statusCode < 500) {
        return { isValid: false, invalidReason: err.invalidReason ?? "invalid_payment" };
      }
      throw unavailable(offer.network, "the payment facilitator did not answer", err);
    }
  }

  /** Settles on chain. A throw means the outcome is unknown (the caller records it pending). */
  async settle(offer: PaymentOffer, payload: PaymentPayload): Promise<SettleResponse> {
    const server = await this.server(offer.network);
    return server.settlePayment(payload, offer.requirements);
  }
}
