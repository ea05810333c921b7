import { and, count, desc, eq, isNull, sql } from "drizzle-orm";
import type { ServiceContext } from "../../context.js";
import { AppError, notFound } from "../../errors.js";
import { creditsToJson, creditUnits, UNITS_PER_CREDIT } from "../../lib/credits.js";
import { newId } from "../../lib/ids.js";
import type { Network } from "../../lib/network.js";
import { sha256Hex } from "../../lib/secrets.js";
import type { Scope } from "../accounts/caller.js";
import { lockAccount } from "../accounts/service.js";
import {
  API_KEY_REVOCATIONS_CHANNEL,
  type ApiKeyCache,
  type ApiKeyCaller,
  type CachedApiKey,
} from "./cache.js";
import { apiKeyNetwork, apiKeyPrefix, generateApiKey } from "./format.js";
import { apiKeys } from "./schema.js";

/** The keys' verbs use this process's key cache when the context carries one (an app context does). */
export type KeysContext = ServiceContext & { apiKeyCache?: ApiKeyCache };

export const MAX_ACTIVE_API_KEYS = 3;

export interface ApiKeyView {
  id: string;
  name: string;
  network: Network;
  prefix: string;
  last4: string;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
  /** Whole credits, or null: no limit. */
  limits: { total: number | null; perDay: number | null };
  /** Credits: settled charges plus open holds of the key, in all and today (UTC). */
  spent: { total: number; today: number };
}

/** Spend limits as the API takes them: whole credits; null removes one, undefined keeps it. */
export interface ApiKeyLimitsInput {
  total?: number | null | undefined;
  perDay?: number | null | undefined;
}

const view = {
  id: apiKeys.id,
  name: apiKeys.name,
  network: apiKeys.network,
  prefix: apiKeys.prefix,
  last4: apiKeys.last4,
  createdAt: apiKeys.createdAt,
  lastUsedAt: apiKeys.lastUsedAt,
  revokedAt: apiKeys.revokedAt,
  limitTotal: apiKeys.limitTotal,
  limitPerDay: apiKeys.limitPerDay,
  spentTotal: apiKeys.spentTotal,
  spentDay: apiKeys.spentDay,
  spentDayDate: apiKeys.spentDayDate,
};

type KeyRow = {
  [K in keyof typeof view]: (typeof view)[K]["_"]["notNull"] extends true
    ? (typeof view)[K]["_"]["data"]
    : (typeof view)[K]["_"]["data"] | null;
};

const limitCredits = (units: bigint | null) =>
  units === null ? null : Number(units / UNITS_PER_CREDIT);

/** The UTC day of `at`, as spent_day_date stores it. */
const utcDay = (at: Date) => at.toISOString().slice(0, 10);

function toView(row: KeyRow, now: Date): ApiKeyView {
  const { limitTotal, limitPerDay, spentTotal, spentDay, spentDayDate, ...rest } = row;
  return {
    ...rest,
    limits: { total: limitCredits(limitTotal), perDay: limitCredits(limitPerDay) },
    spent: {
      total: creditsToJson(spentTotal),
      today: spentDayDate === utcDay(now) ? creditsToJson(spentDay) : 0,
    },
  };
}

/** The columns to set for `limits`, in ledger units (absent ones untouched). */
function limitColumns(limits: ApiKeyLimitsInput | undefined) {
  const units = (credits: number | null) => (credits === null ? null : creditUnits(credits));
  return {
    ...(limits?.total !== undefined && { limitTotal: units(limits.total) }),
    ...(limits?.perDay !== undefined && { limitPerDay: units(limits.perDay) }),
  };
}

/** A key caller acts on its own network only; a session or operator names the network. */
function networkFor(scope: Scope, requested: Network | undefined): Network {
  if (scope.network && requested && requested !== scope.network) {
    throw new AppError(
      "network_mismatch",
      `A ${scope.network} key cannot manage ${requested} keys.`,
    );
  }
  const network = requested ?? scope.network;
  if (!network) {
    throw new AppError("invalid_request", "network is required: live or test.", {
      issues: [{ path: "network", message: "required" }],
    });
  }
  return network;
}

/**
 * A key with a spend limit may neither lift it nor escape it: it cannot create keys or change
 * limits (403 limited_key_forbidden). A session, an operator and an unlimited key can. Read in
 * the transaction that changes keys, after the account's row is locked: a key limited by a
 * concurrent change cannot slip through before it commits.
 */
async function assertMayManageKeys(ctx: ServiceContext, scope: Scope) {
  if (!scope.apiKeyId) return;
  const [own] = await ctx.db
    .select({ total: apiKeys.limitTotal, perDay: apiKeys.limitPerDay })
    .from(apiKeys)
    .where(eq(apiKeys.id, scope.apiKeyId));
  if (own && (own.total !== null || own.perDay !== null)) {
    throw new AppError(
      "limited_key_forbidden",
      "A key with a spend limit cannot create keys or change limits: use a wallet session or a key without limits.",
    );
  }
}

/**
 * Issues a key and returns it in full: the only time it is ever shown. The account row is
 * locked first, so concurrent creates for one account queue behind each other and the
 * active-key cap holds.
 */
export async function createApiKey(
  ctx: ServiceContext,
  scope: Scope,
  input: { name: string; network?: Network | undefined; limits?: ApiKeyLimitsInput | undefined },
): Promise<{ apiKey: ApiKeyView; key: string }> {
  const network = networkFor(scope, input.network);
  const key = generateApiKey(network);
  const apiKey = await ctx.db.transaction(async (tx) => {
    await lockAccount({ ...ctx, db: tx }, scope.accountId);
    await assertMayManageKeys({ ...ctx, db: tx }, scope);

    const [active] = await tx
      .select({ n: count() })
      .from(apiKeys)
      .where(and(eq(apiKeys.accountId, scope.accountId), isNull(apiKeys.revokedAt)));
    if ((active?.n ?? 0) >= MAX_ACTIVE_API_KEYS) {
      throw new AppError(
        "api_key_limit_reached",
        `An account can have at most ${MAX_ACTIVE_API_KEYS} active API keys. Revoke one first.`,
        { limit: MAX_ACTIVE_API_KEYS },
      );
    }

    const [row] = await tx
      .insert(apiKeys)
      .values({
        id: newId("key"),
        accountId: scope.accountId,
        network,
        name: input.name,
        keyHash: sha256Hex(key),
        prefix: apiKeyPrefix(network),
        last4: key.slice(-4),
        createdAt: ctx.clock(),
        ...limitColumns(input.limits),
      })
      .returning(view);
    return toView(row as KeyRow, ctx.clock());
  });
  ctx.logger.info({ apiKeyId: apiKey.id, accountId: scope.accountId, network }, "api key created");
  return { apiKey, key };
}

/** Active keys of the scope, newest first. Never the secret: only its prefix and last 4. */
export async function listApiKeys(
  ctx: ServiceContext,
  scope: Scope,
  filter: { network?: Network | undefined } = {},
): Promise<ApiKeyView[]> {
  const network = scope.network ?? filter.network;
  if (scope.network && filter.network && filter.network !== scope.network) return [];
  const rows = await ctx.db
    .select(view)
    .from(apiKeys)
    .where(
      and(
        eq(apiKeys.accountId, scope.accountId),
        isNull(apiKeys.revokedAt),
        network ? eq(apiKeys.network, network) : undefined,
      ),
    )
    .orderBy(desc(apiKeys.createdAt), desc(apiKeys.id));
  const now = ctx.clock();
  return rows.map((row) => toView(row, now));
}

/** Sets a key's spend limits (null removes one, absent keeps it); what it spent is kept. */
export async function updateApiKeyLimits(
  ctx: ServiceContext,
  scope: Scope,
  apiKeyId: string,
  limits: ApiKeyLimitsInput,
): Promise<ApiKeyView> {
  const inScope = and(
    eq(apiKeys.id, apiKeyId),
    eq(apiKeys.accountId, scope.accountId),
    isNull(apiKeys.revokedAt),
    scope.network ? eq(apiKeys.network, scope.network) : undefined,
  );
  const columns = limitColumns(limits);
  const row = await ctx.db.transaction(async (tx) => {
    await lockAccount({ ...ctx, db: tx }, scope.accountId);
    await assertMayManageKeys({ ...ctx, db: tx }, scope);
    const [changed] = Object.keys(columns).length
      ? await tx.update(apiKeys).set(columns).where(inScope).returning(view)
      : await tx.select(view).from(apiKeys).where(inScope);
    return changed;
  });
  if (!row) throw notFound("API key");
  ctx.logger.info({ apiKeyId, accountId: scope.accountId, limits }, "api key limits changed");
  return toView(row, ctx.clock());
}

/**
 * Revokes a key of the scope; it fails authentication from the next request on, on every
 * process: the revocation NOTIFYs the key's id in its own transaction (every process's key
 * cache evicts it on the notice), and this process evicts it as soon as that commits. Revoking
 * a revoked key returns it unchanged; a key outside the scope does not exist for this caller.
 */
export async function revokeApiKey(
  ctx: KeysContext,
  scope: Scope,
  apiKeyId: string,
): Promise<ApiKeyView> {
  const inScope = and(
    eq(apiKeys.id, apiKeyId),
    eq(apiKeys.accountId, scope.accountId),
    scope.network ? eq(apiKeys.network, scope.network) : undefined,
  );
  const revoked = await ctx.db.transaction(async (tx) => {
    const [row] = await tx
      .update(apiKeys)
      .set({ revokedAt: ctx.clock() })
      .where(and(inScope, isNull(apiKeys.revokedAt)))
      .returning(view);
    if (row) await tx.execute(sql`select pg_notify(${API_KEY_REVOCATIONS_CHANNEL}, ${row.id})`);
    return row;
  });
  if (revoked) {
    ctx.apiKeyCache?.forget(revoked.id);
    ctx.logger.info({ apiKeyId, accountId: scope.accountId }, "api key revoked");
    return toView(revoked, ctx.clock());
  }
  const [existing] = await ctx.db.select(view).from(apiKeys).where(inScope);
  if (!existing) throw notFound("API key");
  return toView(existing, ctx.clock());
}

// Recording every use would write on every request; a minute's precision is enough.
const LAST_USED_PRECISION_SECONDS = 60;
const LAST_USED_PRECISION_MS = LAST_USED_PRECISION_SECONDS * 1000;

/**
 * Resolves a presented API key to its caller, or fails with 401 `invalid_api_key`. A key this
 * process's cache holds costs no round trip (its use is recorded at most once a minute, off the
 * request's path); any other is read, and its use recorded, in one statement. Unknown and
 * revoked keys are never cached.
 */
export async function authenticateApiKey(ctx: KeysContext, token: string): Promise<ApiKeyCaller> {
  if (!apiKeyNetwork(token)) {
    throw new AppError(
      "invalid_api_key",
      "Malformed API key: expected sk_live_ or sk_test_ followed by 64 letters and digits.",
    );
  }
  const keyHash = sha256Hex(token);
  const now = ctx.clock();
  const cache = ctx.apiKeyCache;
  const cached = cache?.get(keyHash);
  if (cached) {
    recordUse(ctx, cached, now);
    return cached.caller;
  }
  const ticket = cache?.ticket();
  // One round trip: find the active key and, at most once a minute, record its use.
  const { rows } = await ctx.db.execute<{
    id: string;
    account_id: string;
    network: Network;
    last_used_at: Date | string | null;
  }>(sql`
    with found as (
      select id, account_id, network, last_used_at from ${apiKeys}
      where key_hash = ${keyHash} and revoked_at is null
    ), touched as (
      update ${apiKeys} set last_used_at = ${now}
      from found
      where ${apiKeys.id} = found.id
        and (found.last_used_at is null
             or found.last_used_at < ${now}::timestamptz - make_interval(secs => ${LAST_USED_PRECISION_SECONDS}))
    )
    select id, account_id, network, last_used_at from found`);
  const row = rows[0];
  if (!row) throw new AppError("invalid_api_key", "Unknown or revoked API key.");
  const caller: ApiKeyCaller = {
    kind: "api_key",
    accountId: row.account_id,
    network: row.network,
    apiKeyId: row.id,
  };
  const lastUsedAt = row.last_used_at === null ? null : new Date(row.last_used_at);
  const recorded =
    lastUsedAt && now.getTime() - lastUsedAt.getTime() < LAST_USED_PRECISION_MS ? lastUsedAt : now;
  cache?.put(ticket, keyHash, caller, recorded);
  return caller;
}

/**
 * Records a cached key's use, at most once a minute per key and process, without holding the
 * request: a lost write only makes last_used_at a minute less precise. Another process that
 * recorded the use within the minute makes it a no-op.
 */
function recordUse(ctx: ServiceContext, cached: CachedApiKey, now: Date) {
  if (cached.lastUsedAt && now.getTime() - cached.lastUsedAt.getTime() < LAST_USED_PRECISION_MS) {
    return;
  }
  cached.lastUsedAt = now;
  ctx.db
    .execute(sql`
      update ${apiKeys} set last_used_at = ${now}
      where ${apiKeys.id} = ${cached.caller.apiKeyId}
        and (${apiKeys.lastUsedAt} is null
             or ${apiKeys.lastUsedAt} < ${now}::timestamptz - make_interval(secs => ${LAST_USED_PRECISION_SECONDS}))`)
    .catch((err: unknown) => ctx.logger.warn({ err }, "could not record an API key's use"));
}
