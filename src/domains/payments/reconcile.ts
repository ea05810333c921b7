import { sql } from "drizzle-orm";
import {
  type Address,
  getAddress,
  type Hex,
  type Log,
  parseAbi,
  parseAbiItem,
  parseEventLogs,
} from "viem";
import type { AppContext } from "../../context.js";
import type { Network } from "../../lib/network.js";
import { transferAmounts } from "../ledger/service.js";
import {
  applySettledPayment,
  getPayment,
  markPaymentFailed,
  mintTransferId,
  type Payment,
  unresolvedPayments,
} from "./service.js";

const transferEvent = parseAbiItem(
  "event Transfer(address indexed from, address indexed to, uint256 value)",
);
const authorizationUsedEvent = parseAbiItem(
  "event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce)",
);
const authorizationStateAbi = parseAbi([
  "function authorizationState(address authorizer, bytes32 nonce) view returns (bool)",
]);

/** Blocks per log query: within what public RPCs accept. */
const LOG_RANGE = 10_000n;

/** How long after its validity window an unsettled authorization is declared failed. */
const EXPIRY_MARGIN_MS = 60_000;

export type Resolution = "settled" | "failed" | "waiting" | "already_resolved";

/**
 * Decides a payment whose settlement outcome was unknown, from the chain alone: its transaction's
 * receipt when we have one, else the token's authorizationState (and the AuthorizationUsed event
 * that names the transaction). Settled → recorded and minted, exactly once; never settled and
 * past its validity window → failed; otherwise it waits for the next try. The payer is never
 * asked again.
 */
export async function resolvePayment(ctx: AppContext, paymentId: string): Promise<Resolution> {
  const payment = await getPayment(ctx, paymentId);
  if (!payment || (payment.status !== "pending" && payment.status !== "settling")) {
    return "already_resolved";
  }
  const chain = ctx.payments.chain(payment.network);
  if (payment.transaction) {
    const receipt = await chain
      .getTransactionReceipt({ hash: payment.transaction as Hex })
      .catch(() => undefined);
    if (receipt?.status === "success" && paysPayment(receipt.logs, payment)) {
      return settle(ctx, payment, payment.transaction);
    }
  }
  const used = await chain.readContract({
    address: payment.asset as Address,
    abi: authorizationStateAbi,
    functionName: "authorizationState",
    args: [payment.payer as Address, payment.nonce as Hex],
  });
  if (used) {
    const log = await findAuthorizationUse(ctx, payment);
    if (!log?.transactionHash) return "waiting";
    const receipt = await chain.getTransactionReceipt({ hash: log.transactionHash });
    if (!paysPayment(receipt.logs, payment)) {
      // Used, but not to pay us what we asked (the payer spent it elsewhere): nothing arrived.
      await markPaymentFailed(ctx, payment.id, "authorization_used_elsewhere");
      return "failed";
    }
    return settle(ctx, payment, log.transactionHash);
  }
  if (ctx.clock().getTime() > payment.validBefore.getTime() + EXPIRY_MARGIN_MS) {
    await markPaymentFailed(ctx, payment.id, "authorization_expired");
    return "failed";
  }
  return "waiting";
}

/** The AuthorizationUsed event of the payment's nonce, searched newest blocks first, in chunks
 * (public RPCs cap a log query's range). */
async function findAuthorizationUse(ctx: AppContext, payment: Payment) {
  const chain = ctx.payments.chain(payment.network);
  const floor = ctx.payments.networkConfig(payment.network).startBlock;
  let to = await chain.getBlockNumber();
  while (to >= floor) {
    const from = to - LOG_RANGE + 1n > floor ? to - LOG_RANGE + 1n : floor;
    const [log] = await chain.getLogs({
      address: payment.asset as Address,
      event: authorizationUsedEvent,
      args: { authorizer: payment.payer as Address, nonce: payment.nonce as Hex },
      fromBlock: from,
      toBlock: to,
    });
    if (log) return log;
    to = from - 1n;
  }
  return undefined;
}

async function settle(ctx: AppContext, payment: Payment, transaction: string) {
  const applied = await applySettledPayment(ctx, { paymentId: payment.id, transaction });
  if (applied) ctx.logger.info({ paymentId: payment.id, transaction }, "pending payment settled");
  return applied ? "settled" : "already_resolved";
}

/** Whether a transaction's logs hold the exact USDC transfer the payment asked for. */
function paysPayment(logs: Log[], payment: Payment) {
  return parseEventLogs({ abi: [transferEvent], logs, strict: true }).some(
    ({ address, args }) =>
      getAddress(address) === payment.asset &&
      getAddress(args.from) === payment.payer &&
      getAddress(args.to) === payment.payTo &&
      args.value === payment.amount,
  );
}

export interface ReconciliationReport {
  network: Network;
  payTo: string;
  toBlock: string;
  /** Unresolved payments decided from the chain during this run. */
  resolved: Array<{ paymentId: string; resolution: Resolution }>;
  /** USDC that reached the treasury, and what the settled payments say reached it. */
  chainTotal: string;
  recordedTotal: string;
  difference: string;
  /** Transfers of payments still being decided: neither side counts them yet. */
  inFlightTransfers: Array<{ transaction: string; from: string; amount: string }>;
  /** Transfers to the treasury no settled payment accounts for (sent outside x402). */
  unrecordedTransfers: Array<{ transaction: string; from: string; amount: string }>;
  /** Settled payments whose transfer is not on chain. */
  missingTransfers: Array<{ paymentId: string; transaction: string | null }>;
  /** Settled payments whose credits were not minted exactly. */
  mintMismatches: Array<{ paymentId: string; credits: string; minted: string }>;
  ok: boolean;
}

/**
 * Compares the treasury's USDC Transfer events on chain with the payments table, for one
 * network. What is safe to repair is repaired first: every unresolved payment is decided from
 * the chain (and minted if it settled). Everything else is reported, never guessed at.
 */
export async function reconcilePayments(
  ctx: AppContext,
  network: Network,
  options: { settlingGraceMs?: number } = {},
): Promise<ReconciliationReport> {
  const config = ctx.payments.networkConfig(network);
  // A settlement retries once after a receipt timeout: a live request may hold a claim that long.
  const grace = options.settlingGraceMs ?? 2 * ctx.payments.config.settleTimeoutMs + 60_000;
  const resolved: ReconciliationReport["resolved"] = [];
  const inFlight = new Set<string>();
  for (const payment of await unresolvedPayments(ctx, network)) {
    // A claim still settling in a live request is left to that request.
    if (
      payment.status === "settling" &&
      ctx.clock().getTime() - payment.updatedAt.getTime() < grace
    ) {
      if (payment.transaction) inFlight.add(payment.transaction.toLowerCase());
      continue;
    }
    try {
      const resolution = await resolvePayment(ctx, payment.id);
      resolved.push({ paymentId: payment.id, resolution });
      if (resolution === "waiting" && payment.transaction) {
        inFlight.add(payment.transaction.toLowerCase());
      }
    } catch (err) {
      // One payment the chain cannot answer for yet must not stop the others.
      ctx.logger.warn({ err, paymentId: payment.id }, "could not resolve payment");
      resolved.push({ paymentId: payment.id, resolution: "waiting" });
      if (payment.transaction) inFlight.add(payment.transaction.toLowerCase());
    }
  }

  const chain = ctx.payments.chain(network);
  const toBlock = await chain.getBlockNumber();
  const transfers = new Map<string, { from: string; amount: bigint }>();
  const step = 10_000n;
  for (let from = config.startBlock; from <= toBlock; from += step) {
    const to = from + step - 1n < toBlock ? from + step - 1n : toBlock;
    const logs = await chain.getLogs({
      address: config.usdcAddress,
      event: transferEvent,
      args: { to: config.payTo },
      fromBlock: from,
      toBlock: to,
    });
    for (const log of logs) {
      const key = log.transactionHash as string;
      const seen = transfers.get(key);
      transfers.set(key, {
        from: getAddress(log.args.from as string),
        amount: (seen?.amount ?? 0n) + (log.args.value ?? 0n),
      });
    }
  }

  const { rows: settled } = await ctx.db.execute<{
    id: string;
    transaction: string | null;
    amount: string;
    credits: string;
  }>(sql`
    select p.id, p.transaction, p.amount, p.credits
    from payments p
    where p.network = ${network}::network and p.status = 'settled' and p.pay_to = ${getAddress(config.payTo)}`);
  // What the ledger minted for each, read through the ledger's own verb.
  const mints = await transferAmounts(
    ctx,
    settled.map((p) => mintTransferId(p.id)),
  );
  const rows = settled.map((p) => ({
    ...p,
    minted: mints.get(mintTransferId(p.id))?.toString() ?? null,
  }));
  const recorded = new Set<string>();
  let recordedTotal = 0n;
  const missingTransfers: ReconciliationReport["missingTransfers"] = [];
  const mintMismatches: ReconciliationReport["mintMismatches"] = [];
  for (const row of rows) {
    recordedTotal += BigInt(row.amount);
    if (row.transaction) recorded.add(row.transaction.toLowerCase());
    if (!row.transaction || !transfers.has(row.transaction.toLowerCase())) {
      missingTransfers.push({ paymentId: row.id, transaction: row.transaction });
    }
    if (BigInt(row.minted ?? 0) !== BigInt(row.credits)) {
      mintMismatches.push({ paymentId: row.id, credits: row.credits, minted: row.minted ?? "0" });
    }
  }
  let chainTotal = 0n;
  const unrecordedTransfers: ReconciliationReport["unrecordedTransfers"] = [];
  const inFlightTransfers: ReconciliationReport["inFlightTransfers"] = [];
  for (const [transaction, t] of transfers) {
    const entry = { transaction, from: t.from, amount: t.amount.toString() };
    if (inFlight.has(transaction.toLowerCase())) {
      inFlightTransfers.push(entry);
      continue;
    }
    chainTotal += t.amount;
    if (!recorded.has(transaction.toLowerCase())) unrecordedTransfers.push(entry);
  }
  const difference = chainTotal - recordedTotal;
  return {
    network,
    payTo: getAddress(config.payTo),
    toBlock: toBlock.toString(),
    resolved,
    chainTotal: chainTotal.toString(),
    recordedTotal: recordedTotal.toString(),
    difference: difference.toString(),
    unrecordedTransfers,
    inFlightTransfers,
    missingTransfers,
    mintMismatches,
    ok:
      difference === 0n &&
      unrecordedTransfers.length === 0 &&
      missingTransfers.length === 0 &&
      mintMismatches.length === 0,
  };
}
