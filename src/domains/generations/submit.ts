import { sql } from "drizzle-orm";
import type { ServiceContext } from "../../context.js";
import { AppError, insufficientCredits, withinPart } from "../../errors.js";
import { enqueueSql } from "../../jobs/definitions.js";
import { leaseUntil } from "../../jobs/queue.js";
import { newId } from "../../lib/ids.js";
import { checkUrl } from "../../lib/safe-fetch.js";
import type { NetworkScope } from "../accounts/caller.js";
import { IDEMPOTENCY_TTL_HOURS } from "../idempotency/service.js";
import {
  BATCH_HOLD_KIND,
  getBalance,
  getHold,
  placeHold,
  placeNewHolds,
  voidHold,
} from "../ledger/service.js";
import { rehostReferenceImages } from "../uploads/service.js";
import { quoteRequest } from "./compose.js";
import { assertInFlightCapacity, GENERATION_HOLD_KIND } from "./in-flight.js";
import type { GenerateRequest, Quote } from "./request.js";

export const resultIdOf = (generationId: string, position: number) => `${generationId}.${position}`;
export const holdIdOf = (resultId: string) => `hold:${resultId}`;

/**
 * A quoted request whose network work is done (webhook URL checked, references re-hosted): what
 * the insert verbs take, so nothing network-bound runs inside their transaction (which, on the
 * paid path, is the one that records a settled payment).
 */
export interface PreparedGeneration {
  request: GenerateRequest;
  priced: Quote;
  /** Upload ids of the re-hosted reference images, in the request's order. */
  referenceImages: string[];
}

/** Quotes a request for the caller and does its network work, before any transaction. */
export async function prepareGeneration(
  ctx: ServiceContext,
  scope: NetworkScope,
  request: GenerateRequest,
): Promise<PreparedGeneration> {
  const priced = await quoteRequest(
    ctx,
    request,
    { network: scope.network, userId: scope.accountId },
    ctx.channels,
  );
  // Network work happens before any transaction, and only for a request that quoted.
  if (request.webhookUrl)
    await checkUrl(request.webhookUrl, { allowHosts: ctx.config.ssrfAllowHosts });
  const referenceImages = await rehostReferenceImages(ctx, scope, request.referenceImageUrls);
  return { request, priced, referenceImages };
}

interface NewResult {
  id: string;
  position: number;
  model: string;
  credits: bigint;
  holdId: string;
}

/**
 * The generation, its results and their jobs in one statement, inside the caller's transaction.
 * Enqueued in the same transaction as the holds the caller places next: charged but never
 * queued cannot happen.
 */
async function insertGeneration(
  tx: ServiceContext,
  scope: NetworkScope,
  { request, priced, referenceImages }: PreparedGeneration,
  generationId: string,
  idem: { key: string; hash: string } | undefined,
  runInline: boolean,
): Promise<NewResult[]> {
  const results = priced.models.map(({ model, cost }, position) => {
    const id = resultIdOf(generationId, position);
    return { id, position, model: model.id, credits: cost, holdId: holdIdOf(id) };
  });
  const column = <T>(f: (r: NewResult) => T) => sql.param(results.map(f));
  const passColumn = <T>(f: (p: Quote["passes"][number]) => T) => sql.param(priced.passes.map(f));
  // The stored request is what the job runs: options resolved, the final prompt in `prompt`.
  const stored = {
    ...request,
    mediaType: priced.mediaType,
    aspectRatio: priced.aspectRatio,
    resolution: priced.resolution,
    seed: request.seed ?? seedOf(generationId),
    referenceImages,
    negativePrompt: priced.negativePrompt,
    // Each video model's frame rate, resolved now (the caller's or the model's default), so a
    // job renders what was quoted even if the catalog's default changes later.
    ...(priced.mediaType === "video" && {
      frameRates: Object.fromEntries(priced.models.map((m) => [m.model.id, m.fps])),
    }),
  };
  await tx.db.execute(sql`
    with generation as (
      insert into generations (id, account_id, network, media_type, prompt, request, quoted, reservation_id,
                               webhook_url, idempotency_key, idempotency_hash, created_at)
      values (${generationId}, ${scope.accountId}, ${scope.network}::network, ${priced.mediaType}::media_type, ${priced.prompt},
              ${JSON.stringify(stored)}::jsonb,
              ${priced.total.toString()}::bigint, ${request.reservationId ?? null}, ${request.webhookUrl ?? null},
              ${idem?.key ?? null}, ${idem?.hash ?? null}, ${tx.clock()})
      returning id),
    passes as (
      insert into generation_passes (generation_id, pass_id, position, creator_id, fee)
      select (select id from generation), p.pass_id, p.position - 1, p.creator_id, p.fee
      from unnest(${passColumn((p) => p.id)}::text[], ${passColumn((p) => p.creatorId)}::text[],
                  ${passColumn((p) => p.fee.toString())}::bigint[]) with ordinality as p(pass_id, creator_id, fee, position)),
    results as (
      insert into generation_results (id, generation_id, position, model, cost, hold_id)
      select r.id, (select id from generation), r.position, r.model, r.cost, r.hold_id
      from unnest(${column((r) => r.id)}::text[], ${column((r) => r.position)}::int[], ${column((r) => r.model)}::text[],
                  ${column((r) => r.credits.toString())}::bigint[], ${column((r) => r.holdId)}::text[])
           as r(id, position, model, cost, hold_id)
      returning id)
    select ${enqueueSql(
      "run_generation",
      { resultId: sql`id` },
      // Run by this process (see inline.ts): the workers leave it alone for the lease.
      {
        jobKey: sql`id`,
        ...(runInline && { runAt: leaseUntil(tx.config.generation.inlineLeaseMs) }),
      },
    )}
    from results`);
  return results;
}

/**
 * A hold per result: from the balance, or drawn from a parent hold (a studio reservation, a
 * batch's hold). Placed last in the transaction: funding from the balance locks the account's
 * balance row until commit, so the lock is held for as short a time as possible.
 */
async function fundResults(
  tx: ServiceContext,
  scope: NetworkScope,
  generationId: string,
  results: NewResult[],
  parentHoldId: string | undefined,
): Promise<void> {
  const expiresAt = new Date(tx.clock().getTime() + tx.config.generation.timeoutSeconds * 1000);
  const hold = {
    network: scope.network,
    ownerId: scope.accountId,
    expiresAt,
    kind: GENERATION_HOLD_KIND,
    reference: generationId,
  };
  if (parentHoldId) {
    for (const r of results) {
      await placeHold(tx, { ...hold, id: r.holdId, amount: r.credits, parentHoldId });
    }
  } else {
    await placeNewHolds(
      tx,
      hold,
      results.map((r) => ({ id: r.holdId, amount: r.credits })),
    );
  }
}

/** The first generations made with these Idempotency-Keys, when any were. */
async function findIdempotentGenerations(
  tx: ServiceContext,
  scope: NetworkScope,
  keys: string[],
  hash: string,
): Promise<Array<{ generationId: string; cost: bigint }> | undefined> {
  const expired = new Date(tx.clock().getTime() - IDEMPOTENCY_TTL_HOURS * 3600_000);
  await tx.db.execute(sql`
    update generations set idempotency_key = null, idempotency_hash = null
    where account_id = ${scope.accountId} and network = ${scope.network}::network
      and idempotency_key = any(${sql.param(keys)}::text[]) and created_at < ${expired}`);
  const { rows } = await tx.db.execute<{
    id: string;
    quoted: string;
    idempotency_key: string;
    idempotency_hash: string | null;
  }>(sql`
    select id, quoted, idempotency_key, idempotency_hash from generations
    where account_id = ${scope.accountId} and network = ${scope.network}::network
      and idempotency_key = any(${sql.param(keys)}::text[])`);
  if (rows.length === 0) return undefined;
  if (rows.length !== keys.length || rows.some((r) => r.idempotency_hash !== hash)) {
    throw new AppError(
      "idempotency_key_reused",
      "That Idempotency-Key was used with a different request.",
    );
  }
  const byKey = new Map(rows.map((r) => [r.idempotency_key, r]));
  return keys.map((key) => {
    const row = byKey.get(key) as (typeof rows)[number];
    return { generationId: row.id, cost: BigInt(row.quoted) };
  });
}

export interface SubmitOptions {
  idempotency?: { key: string; hash: string } | undefined;
  /**
   * The caller runs the generation itself, at once (InlineRuns), unless this is a replay: its
   * jobs wait a lease before a worker may take them.
   */
  runInline?: boolean;
}

const isIdempotencyRace = (err: unknown) =>
  (err as { cause?: { constraint?: string } }).cause?.constraint ===
  "generations_account_idempotency_key";

/**
 * Quotes the request, then in ONE transaction: a hold per model (from the balance or from a
 * studio reservation), the generation and its results, and one job per model. Either all of
 * it exists or none of it. With an Idempotency-Key, the same key returns the first generation.
 */
export async function submitGeneration(
  ctx: ServiceContext,
  scope: NetworkScope,
  request: GenerateRequest,
  options: SubmitOptions = {},
): Promise<{ generationId: string; cost: bigint; replayed: boolean }> {
  const prepared = await prepareGeneration(ctx, scope, request);
  return insertPreparedGeneration(ctx, scope, prepared, options);
}

/**
 * A prepared generation in ONE transaction (joined as a savepoint when `ctx` is already in
 * one): the generation and its results, one job per model, and a hold per model (from the
 * balance or from a studio reservation). Database work only: no quote, no DNS, no fetch.
 */
export async function insertPreparedGeneration(
  ctx: ServiceContext,
  scope: NetworkScope,
  prepared: PreparedGeneration,
  options: SubmitOptions,
): Promise<{ generationId: string; cost: bigint; replayed: boolean }> {
  const { request } = prepared;
  const generationId = newId("gen");
  const idem = options.idempotency;
  try {
    return await ctx.db.transaction(async (db) => {
      const tx = { ...ctx, db };
      const first = idem && (await findIdempotentGenerations(tx, scope, [idem.key], idem.hash));
      if (first?.[0]) return { ...first[0], replayed: true };
      const results = await insertGeneration(
        tx,
        scope,
        prepared,
        generationId,
        idem,
        options.runInline ?? false,
      );
      await fundResults(tx, scope, generationId, results, request.reservationId);
      await assertInFlightCapacity(tx, scope);
      return { generationId, cost: prepared.priced.total, replayed: false };
    });
  } catch (err) {
    if (err instanceof AppError && err.code === "insufficient_credits") {
      // Report the whole request's need, against what the caller has to draw from.
      const have = request.reservationId
        ? ((await getHold(ctx, request.reservationId))?.available ?? 0n)
        : (await getBalance(ctx, scope.accountId, scope.network)).creditBalance;
      throw insufficientCredits(prepared.priced.total, have);
    }
    // Two concurrent requests with one Idempotency-Key: the loser returns the winner's work.
    if (idem && isIdempotencyRace(err)) {
      return insertPreparedGeneration(ctx, scope, prepared, options);
    }
    throw err;
  }
}

export const MAX_BATCH_SIZE = 20;

export interface SubmittedBatch {
  batchId: string | null;
  cost: bigint;
  generations: Array<{ generationId: string; cost: bigint }>;
  replayed: boolean;
}

/**
 * Up to 20 generations in one call under one hold: the batch's hold takes the whole quote from
 * the balance at once (so a batch is accepted whole or refused whole), each generation's
 * results draw their own holds from it, and the batch's hold, fully drawn, is closed, all in
 * one transaction. From then on each generation is charged and refunded on its own. With an
 * Idempotency-Key, the same key returns the first batch's generations.
 */
export async function submitGenerationBatch(
  ctx: ServiceContext,
  scope: NetworkScope,
  requests: GenerateRequest[],
  options: { idempotency?: { key: string; hash: string } | undefined } = {},
): Promise<SubmittedBatch> {
  const prepared = await prepareGenerationBatch(ctx, scope, requests);
  return insertPreparedBatch(ctx, scope, prepared, options);
}

/** A batch's requests, each prepared; a refusal names its item. */
export async function prepareGenerationBatch(
  ctx: ServiceContext,
  scope: NetworkScope,
  requests: GenerateRequest[],
): Promise<PreparedGeneration[]> {
  const prepared: PreparedGeneration[] = [];
  for (const [i, request] of requests.entries()) {
    try {
      if (request.reservationId) {
        throw new AppError(
          "invalid_request",
          "A batch is funded by its own hold: draw from a reservation with POST /v1/generate instead.",
          { field: "reservationId" },
        );
      }
      prepared.push(await prepareGeneration(ctx, scope, request));
    } catch (err) {
      throw err instanceof AppError ? inBatchItem(err, i) : err;
    }
  }
  return prepared;
}

/**
 * A prepared batch in ONE transaction under the batch's hold (see submitGenerationBatch).
 * Database work only: no quote, no DNS, no fetch. Its items carry no reservation (the batch's
 * hold funds them; prepareGenerationBatch refuses one).
 */
export async function insertPreparedBatch(
  ctx: ServiceContext,
  scope: NetworkScope,
  prepared: PreparedGeneration[],
  options: { idempotency?: { key: string; hash: string } | undefined },
): Promise<SubmittedBatch> {
  const total = prepared.reduce((sum, p) => sum + p.priced.total, 0n);
  const idem = options.idempotency;
  const keys = prepared.map((_, i) => (idem ? `${idem.key}#${i}` : undefined));
  const batchId = newId("bat");
  try {
    return await ctx.db.transaction(async (db) => {
      const tx = { ...ctx, db };
      const first =
        idem && (await findIdempotentGenerations(tx, scope, keys as string[], idem.hash));
      if (first) {
        const cost = first.reduce((sum, g) => sum + g.cost, 0n);
        // The batch's hold is the parent of its generations' holds.
        const anyHold =
          first[0] && (await getHold(tx, holdIdOf(resultIdOf(first[0].generationId, 0))));
        return { batchId: anyHold?.parentHoldId ?? null, cost, generations: first, replayed: true };
      }
      const expiresAt = new Date(
        tx.clock().getTime() + ctx.config.generation.timeoutSeconds * 1000,
      );
      await placeHold(tx, {
        id: batchId,
        network: scope.network,
        ownerId: scope.accountId,
        amount: total,
        expiresAt,
        kind: BATCH_HOLD_KIND,
        reference: `batch of ${prepared.length}`,
      });
      const generations = [];
      for (const [i, item] of prepared.entries()) {
        const generationId = newId("gen");
        const key = keys[i];
        const results = await insertGeneration(
          tx,
          scope,
          item,
          generationId,
          idem && key ? { key, hash: idem.hash } : undefined,
          false,
        );
        await fundResults(tx, scope, generationId, results, batchId);
        generations.push({ generationId, cost: item.priced.total });
      }
      await voidHold(tx, { holdId: batchId, id: `close:${batchId}`, reference: "batch drawn" });
      await assertInFlightCapacity(tx, scope);
      return { batchId, cost: total, generations, replayed: false };
    });
  } catch (err) {
    if (err instanceof AppError && err.code === "insufficient_credits") {
      const { creditBalance } = await getBalance(ctx, scope.accountId, scope.network);
      throw insufficientCredits(total, creditBalance);
    }
    if (idem && isIdempotencyRace(err)) {
      return insertPreparedBatch(ctx, scope, prepared, options);
    }
    throw err;
  }
}

/** An item's refusal, named by its place in the batch. */
const inBatchItem = (err: AppError, index: number): AppError =>
  withinPart(err, `requests[${index}]`, `requests.${index}`);

/** A stable seed per generation when the caller gives none, so a rerun renders the same. */
function seedOf(generationId: string): number {
  let h = 0;
  for (const ch of generationId) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return h % 2 ** 31;
}
