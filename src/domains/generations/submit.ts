import { sql } from "drizzle-orm";
import { PgTransaction } from "drizzle-orm/pg-core";
import type { ServiceContext } from "../../context.js";
import type { Executor } from "../../db/client.js";
import { groupCommitFor } from "../../db/group-commit.js";
import {
  AppError,
  insufficientCredits,
  keyLimitExceeded,
  notFound,
  withinPart,
} from "../../errors.js";
import { type JobPayload, parseJobPayload, queuedTasks } from "../../jobs/definitions.js";
import { newId } from "../../lib/ids.js";
import { checkUrl } from "../../lib/safe-fetch.js";
import type { NetworkScope } from "../accounts/caller.js";
import { IDEMPOTENCY_TTL_HOURS } from "../idempotency/service.js";
import {
  BATCH_HOLD_KIND,
  getBalance,
  getHold,
  holdPlacement,
  holdTransferId,
  placeHold,
  voidHold,
} from "../ledger/service.js";
import { rehostReferenceImages } from "../uploads/service.js";
import { quoteRequest } from "./compose.js";
import { assertInFlightCapacity, GENERATION_HOLD_KIND, tooManyInFlight } from "./in-flight.js";
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

/** The document generation_submit takes (drizzle/0015_generation_submit.sql). */
interface SubmitDocument {
  id: string;
  accountId: string;
  network: string;
  mediaType: string;
  prompt: string;
  request: Record<string, unknown>;
  quoted: string;
  reservationId: string | null;
  webhookUrl: string | null;
  idempotencyKey: string | null;
  idempotencyHash: string | null;
  idempotencyExpiredBefore: string;
  now: string;
  passes: Array<{ passId: string; creatorId: string; fee: string }>;
  results: Array<{
    id: string;
    position: number;
    model: string;
    cost: string;
    holdId: string;
    payload: JobPayload<"run_generation">;
  }>;
  job: { task: "run_generation"; maxAttempts: number; leaseMs: number | null };
  /** What ledger_place_holds takes. */
  holds: {
    network: string;
    account: string;
    holdsAccount: string;
    kind: string;
    reference: string;
    expiresAt: string;
    now: string;
    parentHoldId: string | null;
    drawableKinds: string[];
    holds: Array<{ id: string; amount: string; fundId: string }>;
  };
  /** The cap on generations in flight, or null when the caller checks it itself (a batch). */
  maxInFlight: number | null;
}

type SubmitRow = {
  outcome: string;
  generation_id: string | null;
  cost: string | null;
  have: string | null;
  detail: string | null;
};

/**
 * generation_submit's document for one prepared generation: the generation, its results and
 * their jobs, and a hold per result, from the balance or drawn from `parentHoldId`.
 */
function submitDocument(
  ctx: ServiceContext,
  scope: NetworkScope,
  { request, priced, referenceImages }: PreparedGeneration,
  generationId: string,
  options: {
    idempotency: { key: string; hash: string } | undefined;
    runInline: boolean;
    parentHoldId: string | undefined;
    checkInFlight: boolean;
  },
): SubmitDocument {
  const now = ctx.clock();
  const results = priced.models.map(({ model, cost }, position) => {
    const id = resultIdOf(generationId, position);
    return { id, position, model: model.id, cost: cost.toString(), holdId: holdIdOf(id) };
  });
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
  const idem = options.idempotency;
  return {
    id: generationId,
    accountId: scope.accountId,
    network: scope.network,
    mediaType: priced.mediaType,
    prompt: priced.prompt,
    request: stored,
    quoted: priced.total.toString(),
    reservationId: request.reservationId ?? null,
    webhookUrl: request.webhookUrl ?? null,
    idempotencyKey: idem?.key ?? null,
    idempotencyHash: idem?.hash ?? null,
    idempotencyExpiredBefore: new Date(
      now.getTime() - IDEMPOTENCY_TTL_HOURS * 3600_000,
    ).toISOString(),
    now: now.toISOString(),
    passes: priced.passes.map((p) => ({
      passId: p.id,
      creatorId: p.creatorId,
      fee: p.fee.toString(),
    })),
    results: results.map((r) => ({
      ...r,
      payload: parseJobPayload("run_generation", { resultId: r.id }),
    })),
    job: {
      task: "run_generation",
      maxAttempts: queuedTasks.run_generation.maxAttempts,
      // Run by this process (see inline.ts): the workers leave it alone for the lease.
      leaseMs: options.runInline ? ctx.config.generation.inlineLeaseMs : null,
    },
    holds: {
      ...holdPlacement({
        network: scope.network,
        ownerId: scope.accountId,
        kind: GENERATION_HOLD_KIND,
        reference: generationId,
        expiresAt: new Date(now.getTime() + ctx.config.generation.timeoutSeconds * 1000),
        now,
        parentHoldId: options.parentHoldId ?? null,
        apiKeyId: scope.apiKeyId,
      }),
      holds: results.map((r) => ({
        id: r.holdId,
        amount: r.cost,
        fundId: holdTransferId(r.holdId, "fund"),
      })),
    },
    maxInFlight: options.checkInFlight ? ctx.config.rateLimits.maxInFlightGenerations : null,
  };
}

const idempotencyKeyReused = () =>
  new AppError("idempotency_key_reused", "That Idempotency-Key was used with a different request.");

/** A concurrent submit took the Idempotency-Key first: submitting again replays its work. */
class IdempotencyRace extends Error {}

/** A submit's outcome: the generation, or the refusal as the AppError the caller sees. */
function submitResult(
  ctx: ServiceContext,
  row: SubmitRow | undefined,
  prepared: PreparedGeneration,
  parentHoldId: string | undefined,
): SubmittedGeneration {
  if (!row) throw new Error("generation_submit returned nothing");
  const have = BigInt(row.have ?? 0);
  switch (row.outcome) {
    case "created":
    case "replayed":
      return {
        generationId: row.generation_id as string,
        cost: BigInt(row.cost as string),
        replayed: row.outcome === "replayed",
        resultIds: prepared.priced.models.map((_, i) => resultIdOf(row.generation_id as string, i)),
      };
    case "insufficient":
      return throwing(insufficientCredits(prepared.priced.total, have));
    case "too_many_in_flight":
      return throwing(tooManyInFlight(Number(have), ctx.config.rateLimits.maxInFlightGenerations));
    case "reservation_not_found":
      return throwing(notFound("Reservation"));
    case "reservation_closed":
      return throwing(
        new AppError(
          "reservation_closed",
          `Reservation ${parentHoldId} is ${row.detail === "expired" ? "expired" : "settled"}.`,
        ),
      );
    case "key_limit_exceeded":
      return throwing(keyLimitExceeded(row.detail as string));
    case "idempotency_key_reused":
      return throwing(idempotencyKeyReused());
    case "idempotency_race":
      throw new IdempotencyRace();
    default:
      throw new Error(`generation_submit answered ${row.outcome}`);
  }
}

const throwing = (err: Error): never => {
  throw err;
};

/**
 * Submits in one statement (see generation_submit), ordered by the account each one locks so
 * that two statements over the same accounts take their locks in one order; answered in input
 * order.
 */
async function runSubmits(db: Executor, docs: SubmitDocument[]): Promise<SubmitRow[]> {
  const order = docs
    .map((doc, index) => ({ doc, index }))
    .sort((a, b) =>
      a.doc.holds.account < b.doc.holds.account
        ? -1
        : a.doc.holds.account > b.doc.holds.account
          ? 1
          : a.index - b.index,
    );
  const { rows } = await db.execute<SubmitRow>(sql`
    select s.* from jsonb_array_elements(${JSON.stringify(order.map((o) => o.doc))}::jsonb)
      with ordinality as d(doc, ord)
    cross join lateral generation_submit(d.doc) s
    order by d.ord`);
  const answers: SubmitRow[] = new Array(docs.length);
  order.forEach(({ index }, position) => {
    answers[index] = rows[position] as SubmitRow;
  });
  return answers;
}

/**
 * One submit: inside the caller's transaction when `db` is one (the paid path records its
 * payment in it), else grouped with the submits arriving meanwhile, one commit for all.
 */
async function runSubmit(ctx: ServiceContext, doc: SubmitDocument): Promise<SubmitRow | undefined> {
  const { db, metrics } = ctx;
  if (db instanceof PgTransaction) return (await runSubmits(db, [doc]))[0];
  const group = groupCommitFor<SubmitDocument, SubmitRow>(
    db,
    "generation_submit",
    (docs) => runSubmits(db, docs),
    (size) => metrics.groupCommitted("generation_submit", size),
  );
  return group.submit(doc);
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
    throw idempotencyKeyReused();
  }
  const byKey = new Map(rows.map((r) => [r.idempotency_key, r]));
  return keys.map((key) => {
    const row = byKey.get(key) as (typeof rows)[number];
    return { generationId: row.id, cost: BigInt(row.quoted) };
  });
}

export interface SubmittedGeneration {
  generationId: string;
  cost: bigint;
  /** An Idempotency-Key's earlier generation: it runs (or ran) already. */
  replayed: boolean;
  /** One result per model, in the request's order: what InlineRuns runs. */
  resultIds: string[];
}

export interface SubmitOptions {
  idempotency?: { key: string; hash: string } | undefined;
  /**
   * The caller runs the generation itself, at once (InlineRuns), unless this is a replay: its
   * jobs wait a lease before a worker may take them.
   */
  runInline?: boolean;
}

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
): Promise<SubmittedGeneration> {
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
): Promise<SubmittedGeneration> {
  const parentHoldId = prepared.request.reservationId;
  const doc = submitDocument(ctx, scope, prepared, newId("gen"), {
    idempotency: options.idempotency,
    runInline: options.runInline ?? false,
    parentHoldId,
    checkInFlight: true,
  });
  try {
    return submitResult(ctx, await runSubmit(ctx, doc), prepared, parentHoldId);
  } catch (err) {
    // Two concurrent requests with one Idempotency-Key: the loser returns the winner's work.
    if (err instanceof IdempotencyRace) {
      return submitResult(ctx, await runSubmit(ctx, doc), prepared, parentHoldId);
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
        apiKeyId: scope.apiKeyId,
        amount: total,
        expiresAt,
        kind: BATCH_HOLD_KIND,
        reference: `batch of ${prepared.length}`,
      });
      // Every generation in one statement, each drawing its holds from the batch's hold.
      const docs = prepared.map((item, i) => {
        const key = keys[i];
        return submitDocument(tx, scope, item, newId("gen"), {
          idempotency: idem && key ? { key, hash: idem.hash } : undefined,
          runInline: false,
          parentHoldId: batchId,
          checkInFlight: false,
        });
      });
      const rows = await runSubmits(tx.db, docs);
      const generations = rows.map((row, i) => {
        const { generationId, cost } = submitResult(
          tx,
          row,
          prepared[i] as PreparedGeneration,
          batchId,
        );
        return { generationId, cost };
      });
      await voidHold(tx, { holdId: batchId, id: `close:${batchId}`, reference: "batch drawn" });
      await assertInFlightCapacity(tx, scope);
      return { batchId, cost: total, generations, replayed: false };
    });
  } catch (err) {
    if (err instanceof AppError && err.code === "insufficient_credits") {
      const { creditBalance } = await getBalance(ctx, scope.accountId, scope.network);
      throw insufficientCredits(total, creditBalance);
    }
    if (err instanceof IdempotencyRace) {
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
