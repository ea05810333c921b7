import { z } from "zod";
import {
  batchSubmitted,
  generationSubmitted,
  imagesProcessing,
  imagesResponse,
  videoJobCreated,
} from "../../src/domains/generations/contract.js";
import type { ErrorCode } from "../../src/errors.js";
import type { RouteContract } from "../../src/http/openapi/contract.js";
import { contractsByOperation } from "../../src/http/openapi/routes.js";

type Contracts = typeof contractsByOperation;

/** The operationId of every route; `call` finds its method and path by it. */
export type OperationId = keyof Contracts;

/** A route's success answers: status → the schema of its JSON body (those without one left out). */
type SuccessSchemas<Op extends OperationId> = {
  [Status in keyof Contracts[Op]["responses"] as Contracts[Op]["responses"][Status] extends {
    schema: z.ZodType;
  }
    ? Status
    : never]: Contracts[Op]["responses"][Status] extends { schema: infer Schema extends z.ZodType }
    ? Schema
    : never;
};

/**
 * Of a route that an agent may also pay per call, what it answers a caller with an API key:
 * one member of each union above (checked to be one), the rest being the x402 answers.
 */
export const keyedBodies = {
  generate: { 202: generationSubmitted },
  generateBatch: { 202: batchSubmitted },
  createImage: { 200: imagesResponse, 202: imagesProcessing },
  createVideoJob: { 202: videoJobCreated },
} satisfies { [Op in OperationId]?: Partial<Record<keyof SuccessSchemas<Op>, z.ZodType>> };

/** The body of an error answer: `{ error: { code, message, requestId, ...details } }`. */
export interface ErrorBody {
  error: {
    code: ErrorCode;
    message: string;
    requestId: string;
    /** What some codes add (issues, field, need and have, …); errorBodySchema lists them. */
    [detail: string]: unknown;
  };
}

type Bodies<Table> = { [Status in keyof Table]: z.output<Table[Status] & z.ZodType> }[keyof Table];

/**
 * What a test reads from an answer: the success body's fields as the contract types them, and
 * `error` as the error envelope types it. One type for both because a test asserts the status
 * first and then reads the side it expects; reading the other side is the test's own mistake.
 */
export type AnswerBody<Success> = [Success] extends [never] ? ErrorBody : Success & ErrorBody;

export type SuccessBody<Op extends OperationId> = AnswerBody<Bodies<SuccessSchemas<Op>>>;
export type KeyedBody<Op extends OperationId> = Op extends keyof typeof keyedBodies
  ? AnswerBody<Bodies<(typeof keyedBodies)[Op]>>
  : SuccessBody<Op>;

const checked = new Set<OperationId>();

/** The route of `operationId`; its entry in keyedBodies checked to be one of its answers. */
export function contractOf(operationId: OperationId): RouteContract {
  const contract: RouteContract = contractsByOperation[operationId];
  if (checked.has(operationId)) return contract;
  const keyed: Partial<Record<number, z.ZodType>> =
    (keyedBodies as Partial<Record<OperationId, Partial<Record<number, z.ZodType>>>>)[
      operationId
    ] ?? {};
  for (const [status, schema] of Object.entries(keyed)) {
    const declared = contract.responses[+status]?.schema;
    const members = declared instanceof z.ZodUnion ? declared.options : [declared];
    if (!members.includes(schema as z.ZodType))
      throw new Error(`keyedBodies.${operationId}[${status}] is not one of the contract's answers`);
  }
  checked.add(operationId);
  return contract;
}
