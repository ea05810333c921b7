import { and, eq, gt, isNull, lt, or } from "drizzle-orm";
import { getAddress, isAddress, verifyMessage } from "viem";
import { generateSiweNonce, parseSiweMessage, validateSiweMessage } from "viem/siwe";
import type { ServiceContext } from "../../context.js";
import { AppError } from "../../errors.js";
import { newId } from "../../lib/ids.js";
import { chainIdOf } from "../../lib/network.js";
import { randomBase62, sha256Hex } from "../../lib/secrets.js";
import type { Caller } from "./caller.js";
import { sessions, siweNonces } from "./schema.js";
import { type Account, findOrCreateWalletAccount } from "./service.js";

/**
 * Sign-in with Ethereum (EIP-4361). The server hands out a single-use nonce; the wallet signs a
 * message naming this service's domain and that nonce; the server checks the message, recovers
 * the signer, consumes the nonce and opens a short session for the wallet's account.
 */

const SESSION_TOKEN_PREFIX = "sess_";
const SESSION_TOKEN_PATTERN = /^sess_[0-9A-Za-z]{48}$/;
const SUPPORTED_CHAIN_IDS: readonly number[] = Object.values(chainIdOf);
export const SIGN_IN_STATEMENT = "Sign in to Polyforge.";

export const isSessionToken = (token: string) => token.startsWith(SESSION_TOKEN_PREFIX);

export async function issueSignInNonce(ctx: ServiceContext) {
  const issuedAt = ctx.clock();
  const expiresAt = new Date(issuedAt.getTime() + ctx.config.auth.siweNonceTtlSeconds * 1000);
  const nonce = generateSiweNonce();
  await ctx.db.insert(siweNonces).values({ nonce, createdAt: issuedAt, expiresAt });
  // Everything a client needs to compose the message it will sign.
  return {
    nonce,
    expiresAt,
    domain: ctx.config.auth.siweDomain,
    uri: ctx.config.http.publicUrl,
    version: "1",
    chainIds: SUPPORTED_CHAIN_IDS,
    statement: SIGN_IN_STATEMENT,
  };
}

const invalidMessage = (why: string) => new AppError("invalid_siwe_message", why);

function sameOrigin(uri: string, base: string): boolean {
  try {
    return new URL(uri).origin === new URL(base).origin;
  } catch {
    return false;
  }
}

export async function signInWithWallet(
  ctx: ServiceContext,
  input: { message: string; signature: `0x${string}` },
): Promise<{ account: Account; sessionToken: string; expiresAt: Date }> {
  const now = ctx.clock();
  const fields = parseSiweMessage(input.message);
  const { address, nonce, chainId } = fields;
  if (!address || !nonce || !chainId || !fields.domain || !fields.uri || !fields.issuedAt) {
    throw invalidMessage(
      "Not an EIP-4361 message: it needs domain, address, URI, version, chain ID, nonce and issued-at.",
    );
  }
  if (fields.version !== "1") throw invalidMessage("Only SIWE message version 1 is supported.");
  if (!isAddress(address) || address !== getAddress(address)) {
    throw invalidMessage("The address must be EIP-55 checksummed, as EIP-4361 requires.");
  }
  for (const [name, value] of [
    ["Issued At", fields.issuedAt],
    ["Expiration Time", fields.expirationTime],
    ["Not Before", fields.notBefore],
  ] as const) {
    if (value && Number.isNaN(value.getTime()))
      throw invalidMessage(`${name} is not an RFC 3339 time.`);
  }
  if (!sameOrigin(fields.uri, ctx.config.http.publicUrl)) {
    throw invalidMessage(`The message's URI must be on ${ctx.config.http.publicUrl}.`);
  }
  if (fields.domain !== ctx.config.auth.siweDomain) {
    throw invalidMessage(`The message is for ${fields.domain}, not ${ctx.config.auth.siweDomain}.`);
  }
  if (!SUPPORTED_CHAIN_IDS.includes(chainId)) {
    throw invalidMessage(
      `Chain ID ${chainId} is not supported; use ${SUPPORTED_CHAIN_IDS.join(" or ")}.`,
    );
  }
  if (fields.expirationTime && fields.expirationTime <= now) {
    throw invalidMessage("The message has expired.");
  }
  if (fields.notBefore && fields.notBefore > now) {
    throw invalidMessage("The message is not valid yet.");
  }

  // viem's own EIP-4361 validation, as a second opinion over the checks above.
  if (
    !validateSiweMessage({ message: fields, domain: ctx.config.auth.siweDomain, nonce, time: now })
  ) {
    throw invalidMessage("The message does not pass EIP-4361 validation.");
  }

  // EOA signatures, recovered locally. Smart-contract wallets (ERC-1271) need a chain client.
  const valid = await verifyMessage({
    address,
    message: input.message,
    signature: input.signature,
  }).catch(() => false);
  if (!valid)
    throw new AppError("invalid_signature", "The signature does not match the message's address.");

  const token = SESSION_TOKEN_PREFIX + randomBase62(48);
  const expiresAt = new Date(now.getTime() + ctx.config.auth.sessionTtlSeconds * 1000);
  return ctx.db.transaction(async (tx) => {
    // Consuming is one conditional update: of two requests with one nonce, exactly one wins.
    const [consumed] = await tx
      .update(siweNonces)
      .set({ usedAt: now })
      .where(
        and(eq(siweNonces.nonce, nonce), isNull(siweNonces.usedAt), gt(siweNonces.expiresAt, now)),
      )
      .returning({ nonce: siweNonces.nonce });
    if (!consumed) {
      const [known] = await tx.select().from(siweNonces).where(eq(siweNonces.nonce, nonce));
      const why = !known
        ? "Unknown nonce: request one from POST /v1/auth/nonce."
        : known.usedAt
          ? "This nonce has already been used; request a new one."
          : "This nonce has expired; request a new one.";
      throw new AppError("invalid_nonce", why);
    }
    const scoped = { ...ctx, db: tx };
    const account = await findOrCreateWalletAccount(scoped, address);
    await tx.insert(sessions).values({
      id: newId("ses"),
      accountId: account.id,
      tokenHash: sha256Hex(token),
      createdAt: now,
      expiresAt,
    });
    ctx.logger.info({ accountId: account.id }, "wallet signed in");
    return { account, sessionToken: token, expiresAt };
  });
}

export async function authenticateSession(
  ctx: ServiceContext,
  token: string,
): Promise<Extract<Caller, { kind: "session" }>> {
  if (!SESSION_TOKEN_PATTERN.test(token)) {
    throw new AppError("invalid_session", "Malformed session token.");
  }
  const [session] = await ctx.db
    .select({ id: sessions.id, accountId: sessions.accountId })
    .from(sessions)
    .where(and(eq(sessions.tokenHash, sha256Hex(token)), gt(sessions.expiresAt, ctx.clock())));
  if (!session) {
    throw new AppError("invalid_session", "Unknown or expired session; sign in again.");
  }
  return { kind: "session", accountId: session.accountId, sessionId: session.id };
}

/** Ends a session before its expiry (sign-out). */
export async function endSession(ctx: ServiceContext, sessionId: string): Promise<void> {
  await ctx.db.update(sessions).set({ expiresAt: ctx.clock() }).where(eq(sessions.id, sessionId));
}

/** Removes nonces and sessions past their expiry; run periodically by the worker. */
export async function deleteExpiredSignInState(ctx: ServiceContext) {
  const now = ctx.clock();
  const nonces = await ctx.db
    .delete(siweNonces)
    .where(or(lt(siweNonces.expiresAt, now), lt(siweNonces.usedAt, now)))
    .returning({ nonce: siweNonces.nonce });
  const expired = await ctx.db
    .delete(sessions)
    .where(lt(sessions.expiresAt, now))
    .returning({ id: sessions.id });
  return { nonces: nonces.length, sessions: expired.length };
}
