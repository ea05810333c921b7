import { z } from "zod";
import { account, signedIn, signInNonce } from "../../src/domains/accounts/contract.js";
import { catalogModel } from "../../src/domains/catalog/contract.js";
import {
  batchSubmitted,
  generationPage,
  generationStatus,
  generationSubmitted,
  imagesProcessing,
  imagesResponse,
  paidBatchSubmitted,
  paidGenerationSubmitted,
  quoteAnswer,
  videoJob,
  videoJobCreated,
} from "../../src/domains/generations/contract.js";
import { apiKey, createdApiKey } from "../../src/domains/keys/contract.js";
import { balance, ledgerEntry } from "../../src/domains/ledger/contract.js";
import { analytics, earnings, stylePass } from "../../src/domains/passes/contract.js";
import {
  packPurchase,
  payment,
  paymentPage,
  paymentPending,
} from "../../src/domains/payments/contract.js";
import { payout } from "../../src/domains/payouts/contract.js";
import { reservation } from "../../src/domains/studio/contract.js";
import { promptTemplate } from "../../src/domains/templates/contract.js";
import { upload } from "../../src/domains/uploads/contract.js";
import { webhookSecret } from "../../src/domains/webhooks/contract.js";
import { workflow, workflowRun } from "../../src/domains/workflows/contract.js";
import type { ErrorCode } from "../../src/errors.js";
import type { RouteContract } from "../../src/http/openapi/contract.js";
import { apiContracts } from "../../src/http/openapi/routes.js";

/**
 * The success bodies of each JSON route, by operationId, for typing what tests read.
 *
 * Why a table: `route()` returns a plain RouteContract and each domain exports its contracts as
 * an array, so the schemas' types do not survive into `apiContracts`. This table restores them
 * from the schemas the contract files export, and `contractOf` checks an entry against the
 * route's own contract (same statuses, same JSON Schema) the first time a test calls it: the
 * table cannot drift from the routes. Once contracts are named exports whose type keeps their
 * schemas, `call` takes the contract itself and this table goes.
 */
const page = <T extends z.ZodType>(item: T) =>
  z.object({ data: z.array(item), nextCursor: z.string().nullable() });

export const successBodies = {
  createSignInNonce: { 201: signInNonce },
  signIn: { 201: signedIn },
  signOut: {},
  getAccount: { 200: account },
  createApiKey: { 201: createdApiKey },
  listApiKeys: { 200: z.object({ data: z.array(apiKey) }) },
  revokeApiKey: { 200: apiKey },
  getBalance: { 200: balance },
  listTransactions: { 200: page(ledgerEntry) },
  buyCreditPack: { 201: packPurchase, 202: paymentPending },
  listPayments: { 200: paymentPage },
  getPaymentByNonce: { 200: payment },
  createPayout: { 201: payout, 202: payout },
  listPayouts: { 200: page(payout) },
  reserveCredits: { 201: reservation },
  settleReservation: { 200: reservation },
  listModels: { 200: z.object({ data: z.array(catalogModel) }) },
  generate: { 202: z.union([generationSubmitted, paidGenerationSubmitted, paymentPending]) },
  quoteGeneration: { 200: quoteAnswer },
  generateBatch: { 202: z.union([batchSubmitted, paidBatchSubmitted, paymentPending]) },
  getGenerationStatus: { 200: generationStatus },
  listGenerations: { 200: generationPage },
  createImage: { 200: imagesResponse, 202: z.union([imagesProcessing, paymentPending]) },
  createVideoJob: { 202: z.union([videoJobCreated, paymentPending]) },
  getVideoJob: { 200: videoJob },
  uploadImage: { 201: upload },
  getWebhookSecret: { 200: webhookSecret },
  rotateWebhookSecret: { 200: webhookSecret },
  createPass: { 201: stylePass },
  listPasses: { 200: page(stylePass) },
  getPass: { 200: stylePass },
  updatePass: { 200: stylePass },
  archivePass: { 200: stylePass },
  getEarnings: { 200: earnings },
  getPassAnalytics: { 200: analytics },
  createTemplate: { 201: promptTemplate },
  listTemplates: { 200: page(promptTemplate) },
  getTemplate: { 200: promptTemplate },
  createWorkflow: { 201: workflow },
  listWorkflows: { 200: page(workflow) },
  getWorkflow: { 200: workflow },
  deleteWorkflow: {},
  runWorkflow: { 202: workflowRun },
  getWorkflowRun: { 200: workflowRun },
} satisfies Record<string, Partial<Record<number, z.ZodType>>>;

/**
 * Of a route that an agent may also pay per call, what it answers a caller with an API key:
 * one member of each union above (checked to be one), the rest being the x402 answers.
 */
export const keyedBodies = {
  generate: { 202: generationSubmitted },
  generateBatch: { 202: batchSubmitted },
  createImage: { 200: imagesResponse, 202: imagesProcessing },
  createVideoJob: { 202: videoJobCreated },
} satisfies { [Op in OperationId]?: Partial<Record<keyof (typeof successBodies)[Op], z.ZodType>> };

export type OperationId = keyof typeof successBodies;

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

export type SuccessBody<Op extends OperationId> = AnswerBody<Bodies<(typeof successBodies)[Op]>>;
export type KeyedBody<Op extends OperationId> = Op extends keyof typeof keyedBodies
  ? AnswerBody<Bodies<(typeof keyedBodies)[Op]>>
  : SuccessBody<Op>;

const jsonSchemaOf = (schema: z.ZodType | undefined) =>
  schema === undefined ? undefined : JSON.stringify(z.toJSONSchema(schema, { io: "output" }));

const checked = new Map<OperationId, RouteContract>();

/** The route of `operationId` in apiContracts, its entry above checked against its contract. */
export function contractOf(operationId: OperationId): RouteContract {
  const known = checked.get(operationId);
  if (known) return known;
  const contract = apiContracts.find((c) => c.operationId === operationId);
  if (!contract) throw new Error(`no route ${operationId} in apiContracts`);
  const table: Partial<Record<number, z.ZodType>> = successBodies[operationId];
  const statuses = Object.keys(contract.responses).filter((s) => contract.responses[+s]?.schema);
  if (statuses.sort().join() !== Object.keys(table).sort().join())
    throw new Error(`successBodies.${operationId}: statuses differ from the contract's`);
  for (const status of statuses) {
    if (jsonSchemaOf(table[+status]) !== jsonSchemaOf(contract.responses[+status]?.schema))
      throw new Error(`successBodies.${operationId}[${status}] is not the contract's schema`);
  }
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
  checked.set(operationId, contract);
  return contract;
}
