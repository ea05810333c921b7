import { createHmac, timingSafeEqual } from "node:crypto";
import { sql } from "drizzle-orm";
import type { Config } from "../../config.js";
import type { ServiceContext } from "../../context.js";
import { AppError } from "../../errors.js";
import type { Network } from "../../lib/network.js";

/**
 * A bearer token that reads one generation: what a caller who paid with x402 (and so has no
 * API key) polls its generation with. `gat_<generation id>.<HMAC>`, signed with the URL signing
 * secret; it opens that generation's status, events and video job, and nothing else.
 */
const PREFIX = "gat_";
const TOKEN = /^gat_(gen_[0-9a-z]{26})\.([\w-]{43})$/;

const mac = (config: Pick<Config, "urlSigningSecret">, generationId: string) =>
  createHmac("sha256", config.urlSigningSecret)
    .update(`generation-access\n${generationId}`)
    .digest("base64url");

export const isAccessToken = (token: string) => token.startsWith(PREFIX);

export const accessTokenFor = (config: Pick<Config, "urlSigningSecret">, generationId: string) =>
  `${PREFIX}${generationId}.${mac(config, generationId)}`;

export async function authenticateAccessToken(
  ctx: ServiceContext,
  token: string,
): Promise<{ accountId: string; network: Network; generationId: string }> {
  const match = TOKEN.exec(token);
  const generationId = match?.[1];
  const given = Buffer.from(match?.[2] ?? "");
  const expected = generationId ? Buffer.from(mac(ctx.config, generationId)) : Buffer.alloc(0);
  if (!generationId || given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new AppError("invalid_api_key", "Invalid generation access token.");
  }
  const { rows } = await ctx.db.execute<{ account_id: string; network: Network }>(
    sql`select account_id, network from generations where id = ${generationId}`,
  );
  const row = rows[0];
  if (!row) throw new AppError("invalid_api_key", "Invalid generation access token.");
  return { accountId: row.account_id, network: row.network, generationId };
}
