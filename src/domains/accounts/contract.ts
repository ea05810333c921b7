import { z } from "zod";
import { route } from "../../http/openapi/contract.js";
import { networks } from "../../lib/network.js";

export const signInRequest = z
  .object({
    message: z.string().min(1).max(4096),
    signature: z
      .string()
      .regex(
        /^0x[0-9a-fA-F]+$/,
        "expected a 0x-prefixed hex signature",
      ) as z.ZodType<`0x${string}`>,
  })
  .strict();

/** What the account and sign-in routes answer, and their entries in the OpenAPI document. */

export const signInNonce = z.object({
  nonce: z.string(),
  expiresAt: z.iso.datetime(),
  domain: z.string().describe("The EIP-4361 message's domain."),
  uri: z.string().describe("The EIP-4361 message's URI."),
  version: z.literal("1"),
  chainIds: z.array(z.number().int()),
  statement: z.string(),
});

export const signedIn = z.object({
  sessionToken: z.string().describe("sess_…: a bearer token for account and key management."),
  expiresAt: z.iso.datetime(),
  account: z.object({
    id: z.string(),
    walletAddress: z.string().nullable(),
    createdAt: z.iso.datetime(),
  }),
});

export const account = z.object({
  id: z.string(),
  walletAddress: z.string().nullable(),
  name: z.string().nullable(),
  createdAt: z.iso.datetime(),
  network: z.enum(networks).nullable().describe("The API key's network; null with a session."),
});

export const accountContracts = {
  createSignInNonce: route({
    method: "post",
    path: "/v1/auth/nonce",
    operationId: "createSignInNonce",
    summary: "A nonce to sign in with a wallet (EIP-4361)",
    description: "Also names the domain, URI, version and chain ids the signed message must use.",
    tag: "Sign-in",
    auth: [],
    responses: {
      201: {
        description: "A nonce, valid once for five minutes.",
        schema: signInNonce,
        example: {
          nonce: "a1b2c3d4e5f6a7b8",
          expiresAt: "2026-11-21T19:25:00.000Z",
          domain: "localhost:3000",
          uri: "http://localhost:3000",
          version: "1",
          chainIds: [8453, 84532],
          statement: "Sign in to Polyforge.",
        },
      },
    },
    errors: [],
  }),
  signIn: route({
    method: "post",
    path: "/v1/auth/verify",
    operationId: "signIn",
    summary: "Sign in with a signed EIP-4361 message",
    description: "The first sign-in of a wallet creates its account.",
    tag: "Sign-in",
    auth: [],
    body: {
      schema: signInRequest,
      example: {
        message: "localhost:3000 wants you to sign in with your Ethereum account:\n0x…",
        signature: "0x…",
      },
    },
    responses: { 201: { description: "A session.", schema: signedIn } },
    errors: ["invalid_siwe_message", "invalid_signature", "invalid_nonce"],
  }),
  signOut: route({
    method: "post",
    path: "/v1/auth/logout",
    operationId: "signOut",
    summary: "End the session",
    description: "With a session token it ends that session; with an API key it does nothing.",
    tag: "Sign-in",
    auth: ["session", "apiKey"],
    responses: { 204: { description: "Signed out." } },
    errors: [],
  }),
  getAccount: route({
    method: "get",
    path: "/v1/account",
    operationId: "getAccount",
    summary: "The caller's account",
    tag: "Account",
    auth: ["apiKey", "session"],
    responses: { 200: { description: "The account.", schema: account } },
    errors: [],
  }),
};
