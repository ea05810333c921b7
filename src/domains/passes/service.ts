import { and, arrayContains, asc, desc, eq, inArray, isNull, or, sql } from "drizzle-orm";
import type { ServiceContext } from "../../context.js";
import { AppError, notFound } from "../../errors.js";
import { newId } from "../../lib/ids.js";
import type { Network } from "../../lib/network.js";
import type { NetworkScope } from "../accounts/caller.js";
import { assertOwnUploads, signedUploadUrl } from "../uploads/service.js";
import { listableBy, pastCursor } from "./published.js";
import { type PassDefaults, stylePasses } from "./schema.js";

export interface PassInput {
  name: string;
  description: string;
  stylePrompt: string;
  negativePrompt?: string | null | undefined;
  defaults: PassDefaults;
  previewImageIds: string[];
  tags: string[];
  mediaType: "image" | "video";
  fee: bigint;
  visibility: "public" | "unlisted";
}

/** A pass as stored: its type is the table's. */
export type Pass = typeof stylePasses.$inferSelect;

/** How long a pass's preview URLs work; each read hands out fresh ones. */
const PREVIEW_URL_TTL_SECONDS = 24 * 3600;

export function passView(ctx: ServiceContext, pass: Pass) {
  return {
    id: pass.id,
    creatorId: pass.creatorId,
    network: pass.network,
    name: pass.name,
    description: pass.description,
    stylePrompt: pass.stylePrompt,
    negativePrompt: pass.negativePrompt,
    defaults: pass.defaults,
    previewImageIds: pass.previewImageIds,
    previewImageUrls: pass.previewImageIds.map((id) =>
      signedUploadUrl(ctx, id, PREVIEW_URL_TTL_SECONDS),
    ),
    tags: pass.tags,
    mediaType: pass.mediaType,
    fee: pass.fee,
    visibility: pass.visibility,
    uses: pass.uses,
    status: pass.archivedAt ? ("archived" as const) : ("active" as const),
    createdAt: pass.createdAt,
    updatedAt: pass.updatedAt,
    archivedAt: pass.archivedAt,
  };
}

export async function createPass(
  ctx: ServiceContext,
  scope: NetworkScope,
  input: PassInput,
): Promise<Pass> {
  await assertOwnUploads(ctx, scope, input.previewImageIds, "previewImageIds");
  const now = ctx.clock();
  const [pass] = await ctx.db
    .insert(stylePasses)
    .values({
      id: newId("pass"),
      creatorId: scope.accountId,
      network: scope.network,
      ...input,
      negativePrompt: input.negativePrompt ?? null,
      createdAt: now,
      updatedAt: now,
    })
    .returning();
  return pass as Pass;
}

/** A pass on the caller's network, by id: public and unlisted ones alike (an id is a link). */
export async function getPass(ctx: ServiceContext, network: Network, id: string): Promise<Pass> {
  const [pass] = await ctx.db
    .select()
    .from(stylePasses)
    .where(and(eq(stylePasses.id, id), eq(stylePasses.network, network)));
  if (!pass) throw notFound("Pass");
  return pass;
}

async function ownPass(ctx: ServiceContext, scope: NetworkScope, id: string): Promise<Pass> {
  const pass = await getPass(ctx, scope.network, id);
  if (pass.creatorId !== scope.accountId) {
    throw new AppError("not_creator", `Only the creator of ${id} can change it.`);
  }
  return pass;
}

export async function updatePass(
  ctx: ServiceContext,
  scope: NetworkScope,
  id: string,
  patch: Partial<PassInput>,
): Promise<Pass> {
  const pass = await ownPass(ctx, scope, id);
  if (pass.archivedAt) {
    throw new AppError("pass_archived", `Style pass ${id} is archived and can no longer change.`, {
      field: "id",
    });
  }
  if (patch.previewImageIds)
    await assertOwnUploads(ctx, scope, patch.previewImageIds, "previewImageIds");
  const [updated] = await ctx.db
    .update(stylePasses)
    .set({ ...patch, updatedAt: ctx.clock() })
    .where(and(eq(stylePasses.id, id), isNull(stylePasses.archivedAt)))
    .returning();
  // Archived between the read and the write: say so rather than report a stale pass.
  if (!updated) return updatePass(ctx, scope, id, patch);
  return updated;
}

/** Archives a pass: no generation can apply it any more. Archiving twice reports the same. */
export async function archivePass(
  ctx: ServiceContext,
  scope: NetworkScope,
  id: string,
): Promise<Pass> {
  await ownPass(ctx, scope, id);
  const [archived] = await ctx.db
    .update(stylePasses)
    .set({ archivedAt: sql`coalesce(${stylePasses.archivedAt}, ${ctx.clock()})` })
    .where(eq(stylePasses.id, id))
    .returning();
  return archived as Pass;
}

export const passSorts = ["newest", "most_used", "fee_asc", "fee_desc"] as const;
export type PassSort = (typeof passSorts)[number];

export interface PassFilter {
  limit: number;
  sort: PassSort;
  creatorId?: string | undefined;
  tag?: string | undefined;
  mediaType?: "image" | "video" | undefined;
  /** Archived passes too: only ever the caller's own. */
  includeArchived?: boolean | undefined;
  /** The last pass of the previous page: its sort value and id. */
  after?: { value: string; id: string } | undefined;
}

/** Sort key per order: the column a cursor carries the value of, and the direction. */
const SORT_KEYS = {
  newest: { column: stylePasses.createdAt, cast: sql`timestamptz`, descending: true },
  most_used: { column: stylePasses.uses, cast: sql`bigint`, descending: true },
  fee_asc: { column: stylePasses.fee, cast: sql`bigint`, descending: false },
  fee_desc: { column: stylePasses.fee, cast: sql`bigint`, descending: true },
} as const satisfies Record<PassSort, unknown>;

export const sortValueOf = (pass: Pass, sort: PassSort): string =>
  sort === "newest"
    ? pass.createdAt.toISOString()
    : sort === "most_used"
      ? pass.uses.toString()
      : pass.fee.toString();

/**
 * Passes on the caller's network: public ones, and the caller's own unlisted ones. Archived
 * passes are left out unless the caller asks for their own.
 */
export async function listPasses(
  ctx: ServiceContext,
  scope: NetworkScope,
  filter: PassFilter,
): Promise<Pass[]> {
  const key = SORT_KEYS[filter.sort];
  const order = key.descending ? desc : asc;
  const own = eq(stylePasses.creatorId, scope.accountId);
  return ctx.db
    .select()
    .from(stylePasses)
    .where(
      and(
        listableBy(stylePasses, scope),
        filter.includeArchived
          ? or(isNull(stylePasses.archivedAt), own)
          : isNull(stylePasses.archivedAt),
        filter.creatorId ? eq(stylePasses.creatorId, filter.creatorId) : undefined,
        filter.tag ? arrayContains(stylePasses.tags, [filter.tag]) : undefined,
        filter.mediaType ? eq(stylePasses.mediaType, filter.mediaType) : undefined,
        pastCursor(stylePasses, key.column, filter.after, key),
      ),
    )
    .orderBy(order(key.column), order(stylePasses.id))
    .limit(filter.limit);
}

/** A pass as a generation applies it: the fee each model result pays (zero on one's own). */
export interface AppliedPass {
  id: string;
  creatorId: string;
  stylePrompt: string;
  negativePrompt: string | null;
  defaults: PassDefaults;
  fee: bigint;
}

/**
 * The passes a generation asks for, in its order, checked for use on `network` by `userId`
 * (unknown, archived, or for the other media type: refused, naming the pass).
 */
export async function passesForUse(
  ctx: ServiceContext,
  use: { network: Network; userId: string | undefined; mediaType: "image" | "video" },
  ids: string[],
): Promise<AppliedPass[]> {
  if (ids.length === 0) return [];
  const seen = new Set<string>();
  for (const id of ids) {
    if (seen.has(id)) {
      throw new AppError("invalid_request", `Style pass ${id} is listed twice.`, {
        field: "stylePassIds",
      });
    }
    seen.add(id);
  }
  const rows = await ctx.db
    .select()
    .from(stylePasses)
    .where(and(inArray(stylePasses.id, ids), eq(stylePasses.network, use.network)));
  const byId = new Map(rows.map((p) => [p.id, p]));
  return ids.map((id) => {
    const pass = byId.get(id);
    const field = { field: "stylePassIds" };
    if (!pass) throw new AppError("pass_not_found", `Style pass ${id} does not exist.`, field);
    if (pass.archivedAt) {
      throw new AppError(
        "pass_archived",
        `Style pass ${id} is archived and can no longer be applied.`,
        field,
      );
    }
    if (pass.mediaType !== use.mediaType) {
      throw new AppError(
        "pass_media_mismatch",
        `Style pass ${id} styles ${pass.mediaType}s, not ${use.mediaType}s.`,
        field,
      );
    }
    return {
      id: pass.id,
      creatorId: pass.creatorId,
      stylePrompt: pass.stylePrompt,
      negativePrompt: pass.negativePrompt,
      defaults: pass.defaults,
      fee: pass.creatorId === use.userId ? 0n : pass.fee,
    };
  });
}
