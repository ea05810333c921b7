import { type SQL, sql } from "drizzle-orm";
import type { ServiceContext } from "../../context.js";
import { AppError, notFound } from "../../errors.js";
import { newId } from "../../lib/ids.js";
import type { Network } from "../../lib/network.js";
import { signedUploadUrl } from "../uploads/service.js";
import type { PassDefaults } from "./schema.js";

export interface CreatorScope {
  accountId: string;
  network: Network;
}

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

interface PassRow {
  id: string;
  creator_id: string;
  network: Network;
  name: string;
  description: string;
  style_prompt: string;
  negative_prompt: string | null;
  defaults: PassDefaults;
  preview_image_ids: string[];
  tags: string[];
  media_type: "image" | "video";
  fee: string;
  visibility: "public" | "unlisted";
  uses: string;
  created_at: string;
  updated_at: string;
  archived_at: string | null;
  [key: string]: unknown;
}

export interface Pass {
  id: string;
  creatorId: string;
  network: Network;
  name: string;
  description: string;
  stylePrompt: string;
  negativePrompt: string | null;
  defaults: PassDefaults;
  previewImageIds: string[];
  tags: string[];
  mediaType: "image" | "video";
  fee: bigint;
  visibility: "public" | "unlisted";
  uses: bigint;
  /** As PostgreSQL printed it, to the microsecond: list cursors use it. */
  createdAtText: string;
  createdAt: Date;
  updatedAt: Date;
  archivedAt: Date | null;
}

const toPass = (r: PassRow): Pass => ({
  id: r.id,
  creatorId: r.creator_id,
  network: r.network,
  name: r.name,
  description: r.description,
  stylePrompt: r.style_prompt,
  negativePrompt: r.negative_prompt,
  defaults: r.defaults,
  previewImageIds: r.preview_image_ids,
  tags: r.tags,
  mediaType: r.media_type,
  fee: BigInt(r.fee),
  visibility: r.visibility,
  uses: BigInt(r.uses),
  createdAtText: r.created_at,
  createdAt: new Date(r.created_at),
  updatedAt: new Date(r.updated_at),
  archivedAt: r.archived_at ? new Date(r.archived_at) : null,
});

const PASS_COLUMNS = sql`id, creator_id, network::text as network, name, description, style_prompt, negative_prompt,
  defaults, preview_image_ids, tags, media_type::text as media_type, fee, visibility::text as visibility, uses,
  created_at::text as created_at, updated_at, archived_at`;

async function passRows(ctx: ServiceContext, query: SQL): Promise<Pass[]> {
  const { rows } = await ctx.db.execute<PassRow>(query);
  return rows.map(toPass);
}

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

/** Preview images are the creator's own uploads on the pass's network. */
async function assertOwnUploads(ctx: ServiceContext, scope: CreatorScope, ids: string[]) {
  if (ids.length === 0) return;
  const { rows } = await ctx.db.execute<{ id: string }>(sql`
    select id from uploads where id = any(${sql.param(ids)}::text[])
      and account_id = ${scope.accountId} and network = ${scope.network}::network`);
  const found = new Set(rows.map((r) => r.id));
  const missing = ids.find((id) => !found.has(id));
  if (missing) {
    throw new AppError(
      "invalid_reference_image",
      `Upload ${missing} does not exist on this account and network.`,
      { field: "previewImageIds" },
    );
  }
}

export async function createPass(
  ctx: ServiceContext,
  scope: CreatorScope,
  input: PassInput,
): Promise<Pass> {
  await assertOwnUploads(ctx, scope, input.previewImageIds);
  const now = ctx.clock();
  const [pass] = await passRows(
    ctx,
    sql`insert into style_passes (id, creator_id, network, name, description, style_prompt, negative_prompt, defaults,
                                  preview_image_ids, tags, media_type, fee, visibility, created_at, updated_at)
        values (${newId("pass")}, ${scope.accountId}, ${scope.network}::network, ${input.name}, ${input.description},
                ${input.stylePrompt}, ${input.negativePrompt ?? null}, ${JSON.stringify(input.defaults)}::jsonb,
                ${sql.param(input.previewImageIds)}::text[], ${sql.param(input.tags)}::text[],
                ${input.mediaType}::media_type, ${input.fee.toString()}::bigint, ${input.visibility}::visibility, ${now}, ${now})
        returning ${PASS_COLUMNS}`,
  );
  return pass as Pass;
}

/** A pass on the caller's network, by id: public and unlisted ones alike (an id is a link). */
export async function getPass(ctx: ServiceContext, network: Network, id: string): Promise<Pass> {
  const [pass] = await passRows(
    ctx,
    sql`select ${PASS_COLUMNS} from style_passes where id = ${id} and network = ${network}::network`,
  );
  if (!pass) throw notFound("Pass");
  return pass;
}

async function ownPass(ctx: ServiceContext, scope: CreatorScope, id: string): Promise<Pass> {
  const pass = await getPass(ctx, scope.network, id);
  if (pass.creatorId !== scope.accountId) {
    throw new AppError("not_creator", `Only the creator of ${id} can change it.`);
  }
  return pass;
}

export async function updatePass(
  ctx: ServiceContext,
  scope: CreatorScope,
  id: string,
  patch: Partial<PassInput>,
): Promise<Pass> {
  const pass = await ownPass(ctx, scope, id);
  if (pass.archivedAt) {
    throw new AppError("pass_archived", `Style pass ${id} is archived and can no longer change.`, {
      field: "id",
    });
  }
  if (patch.previewImageIds) await assertOwnUploads(ctx, scope, patch.previewImageIds);
  const set: SQL[] = [sql`updated_at = ${ctx.clock()}`];
  const text = (column: string, value: string | null | undefined) => {
    if (value !== undefined) set.push(sql`${sql.identifier(column)} = ${value}`);
  };
  text("name", patch.name);
  text("description", patch.description);
  text("style_prompt", patch.stylePrompt);
  text("negative_prompt", patch.negativePrompt);
  if (patch.defaults) set.push(sql`defaults = ${JSON.stringify(patch.defaults)}::jsonb`);
  if (patch.previewImageIds)
    set.push(sql`preview_image_ids = ${sql.param(patch.previewImageIds)}::text[]`);
  if (patch.tags) set.push(sql`tags = ${sql.param(patch.tags)}::text[]`);
  if (patch.mediaType) set.push(sql`media_type = ${patch.mediaType}::media_type`);
  if (patch.fee !== undefined) set.push(sql`fee = ${patch.fee.toString()}::bigint`);
  if (patch.visibility) set.push(sql`visibility = ${patch.visibility}::visibility`);
  const [updated] = await passRows(
    ctx,
    sql`update style_passes set ${sql.join(set, sql`, `)}
        where id = ${id} and archived_at is null returning ${PASS_COLUMNS}`,
  );
  // Archived between the read and the write: say so rather than report a stale pass.
  if (!updated) return updatePass(ctx, scope, id, patch);
  return updated;
}

/** Archives a pass: no generation can apply it any more. Archiving twice reports the same. */
export async function archivePass(
  ctx: ServiceContext,
  scope: CreatorScope,
  id: string,
): Promise<Pass> {
  await ownPass(ctx, scope, id);
  const [archived] = await passRows(
    ctx,
    sql`update style_passes set archived_at = coalesce(archived_at, ${ctx.clock()})
        where id = ${id} returning ${PASS_COLUMNS}`,
  );
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

/** Sort key per order: the value a cursor carries, and the direction. */
const SORT_KEYS: Record<PassSort, { column: SQL; cast: SQL; descending: boolean }> = {
  newest: { column: sql`created_at`, cast: sql`timestamptz`, descending: true },
  most_used: { column: sql`uses`, cast: sql`bigint`, descending: true },
  fee_asc: { column: sql`fee`, cast: sql`bigint`, descending: false },
  fee_desc: { column: sql`fee`, cast: sql`bigint`, descending: true },
};

export const sortValueOf = (pass: Pass, sort: PassSort): string =>
  sort === "newest"
    ? pass.createdAtText
    : sort === "most_used"
      ? pass.uses.toString()
      : pass.fee.toString();

/**
 * Passes on the caller's network: public ones, and the caller's own unlisted ones. Archived
 * passes are left out unless the caller asks for their own.
 */
export async function listPasses(
  ctx: ServiceContext,
  scope: CreatorScope,
  filter: PassFilter,
): Promise<Pass[]> {
  const key = SORT_KEYS[filter.sort];
  const direction = key.descending ? sql`desc` : sql`asc`;
  const comparison = key.descending ? sql`<` : sql`>`;
  return passRows(
    ctx,
    sql`select ${PASS_COLUMNS} from style_passes
        where network = ${scope.network}::network
          and (visibility = 'public' or creator_id = ${scope.accountId})
          and (archived_at is null or (${filter.includeArchived === true} and creator_id = ${scope.accountId}))
          ${filter.creatorId ? sql`and creator_id = ${filter.creatorId}` : sql``}
          ${filter.tag ? sql`and tags @> array[${filter.tag}]::text[]` : sql``}
          ${filter.mediaType ? sql`and media_type = ${filter.mediaType}::media_type` : sql``}
          ${
            filter.after
              ? sql`and (${key.column}, id) ${comparison} (${filter.after.value}::${key.cast}, ${filter.after.id})`
              : sql``
          }
        order by ${key.column} ${direction}, id ${direction}
        limit ${filter.limit}`,
  );
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
  const rows = await passRows(
    ctx,
    sql`select ${PASS_COLUMNS} from style_passes where id = any(${sql.param(ids)}::text[]) and network = ${use.network}::network`,
  );
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
