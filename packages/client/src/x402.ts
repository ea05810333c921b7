import type { ClientEvmSigner } from "@x402/evm";
import { ExactEvmScheme } from "@x402/evm/exact/client";
import { wrapFetchWithPayment, x402Client } from "@x402/fetch";
import { PolyforgeError } from "./errors.js";

/** USDC on Base and Base Sepolia, the networks Polyforge takes payments on. */
export const NETWORKS = ["eip155:8453", "eip155:84532"] as const;
export type PaymentNetwork = (typeof NETWORKS)[number];

/** What each paid response cost, for callers that report it (amountPaid). */
const paidFor = new WeakMap<Response, bigint>();

/** The USDC base units the x402 payment behind `response` took, or undefined if none was made. */
export function amountPaid(response: Response): bigint | undefined {
  return paidFor.get(response);
}

/** Spend controls, in USDC base units (6 decimals: 1_000_000 is $1). */
export interface SpendLimits {
  /** The most one call may pay. Default 1_000_000 ($1, x402's own default). */
  maxPerCall?: bigint;
  /** The most this client may pay in one UTC day, counted in this process. Default: no limit. */
  maxPerDay?: bigint;
}

/** What a client has paid today (UTC), in USDC base units. */
export class SpendLedger {
  private day = "";
  private spent = 0n;
  constructor(private readonly now: () => Date = () => new Date()) {}
  private roll() {
    const today = this.now().toISOString().slice(0, 10);
    if (today !== this.day) {
      this.day = today;
      this.spent = 0n;
    }
  }
  today(): bigint {
    this.roll();
    return this.spent;
  }
  /** Counts a payment toward today; returns the day it was counted on (for release). */
  add(amount: bigint): string {
    if (amount < 0n) throw new RangeError("a payment is never negative: use release");
    this.roll();
    this.spent += amount;
    return this.day;
  }
  /**
   * Takes back a payment the API refused. Only from the day it was counted on: after midnight
   * (UTC) the new day's total owes it nothing.
   */
  release(amount: bigint, day: string) {
    this.roll();
    if (day !== this.day) return;
    this.spent = this.spent > amount ? this.spent - amount : 0n;
  }
}

/**
 * `fetch` that answers a 402 by paying with x402 from `wallet` (@x402/fetch with the EVM exact
 * scheme), after checking the requirement against the limits: one above `maxPerCall`, or one
 * that would take today's total over `maxPerDay`, throws a PolyforgeError before anything is
 * signed. A payment the API then refuses (402 again) is not counted.
 */
export function payingFetch(
  base: typeof fetch,
  wallet: ClientEvmSigner,
  limits: SpendLimits,
  ledger: SpendLedger,
  networks: readonly PaymentNetwork[] = NETWORKS,
): typeof fetch {
  const maxPerCall = limits.maxPerCall ?? 1_000_000n;
  return async (input, init) => {
    let refusal: PolyforgeError | undefined;
    let counted = 0n;
    let countedOn = "";
    const client = new x402Client().setSpendControls({ maxAmountPerPayment: false });
    for (const network of networks) client.register(network, new ExactEvmScheme(wallet));
    client.onBeforePaymentCreation(async ({ selectedRequirements }) => {
      const amount = BigInt(selectedRequirements.amount);
      const spentToday = ledger.today();
      const details = {
        amount: amount.toString(),
        asset: selectedRequirements.asset,
        network: selectedRequirements.network,
        maxPerCall: maxPerCall.toString(),
        maxPerDay: limits.maxPerDay?.toString() ?? null,
        spentToday: spentToday.toString(),
      };
      if (amount > maxPerCall) {
        refusal = new PolyforgeError({
          status: 0,
          code: "spend_cap_per_call",
          message: `Refused to pay ${amount} USDC base units: above maxPerCall (${maxPerCall}).`,
          details,
        });
      } else if (limits.maxPerDay !== undefined && spentToday + amount > limits.maxPerDay) {
        refusal = new PolyforgeError({
          status: 0,
          code: "spend_cap_per_day",
          message: `Refused to pay ${amount} USDC base units: ${spentToday} already paid today, maxPerDay is ${limits.maxPerDay}.`,
          details,
        });
      }
      if (refusal) return { abort: true, reason: refusal.message };
      countedOn = ledger.add(amount);
      // Added, not set: were x402 ever to sign again for this call, both would count.
      counted += amount;
      return undefined;
    });
    const pay = wrapFetchWithPayment(base, client);
    try {
      const response = await pay(input, init);
      if (response.status === 402 && counted > 0n) ledger.release(counted, countedOn);
      else if (counted > 0n) paidFor.set(response, counted);
      return response;
    } catch (err) {
      if (refusal) throw refusal;
      throw err;
    }
  };
}
