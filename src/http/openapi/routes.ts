import { accountContracts } from "../../domains/accounts/contract.js";
import { audioContracts } from "../../domains/audio/contract.js";
import { catalogContracts } from "../../domains/catalog/contract.js";
import { chatContracts } from "../../domains/chat/contract.js";
import { generationContracts } from "../../domains/generations/contract.js";
import { keyContracts } from "../../domains/keys/contract.js";
import { ledgerContracts } from "../../domains/ledger/contract.js";
import { passContracts } from "../../domains/passes/contract.js";
import { paymentContracts } from "../../domains/payments/contract.js";
import { payoutContracts } from "../../domains/payouts/contract.js";
import { studioContracts } from "../../domains/studio/contract.js";
import { templateContracts } from "../../domains/templates/contract.js";
import { uploadContracts } from "../../domains/uploads/contract.js";
import { webhookContracts } from "../../domains/webhooks/contract.js";
import { workflowContracts } from "../../domains/workflows/contract.js";
import { mcpContracts } from "../../mcp/contract.js";
import { opsContracts } from "../contract.js";
import type { RouteContract } from "./contract.js";
import { buildOpenApiDocument, type OpenApiDocument } from "./document.js";

/** Every route by its operationId, each keeping its own type (tests read bodies through it). */
export const contractsByOperation = {
  ...opsContracts,
  ...accountContracts,
  ...keyContracts,
  ...ledgerContracts,
  ...paymentContracts,
  ...payoutContracts,
  ...studioContracts,
  ...catalogContracts,
  ...chatContracts,
  ...generationContracts,
  ...audioContracts,
  ...uploadContracts,
  ...webhookContracts,
  ...passContracts,
  ...templateContracts,
  ...workflowContracts,
  ...mcpContracts,
};

/** Every route the HTTP app serves, each domain's list in the order the app mounts them. */
export const apiContracts: readonly RouteContract[] = Object.values(contractsByOperation);

let built: OpenApiDocument | undefined;

/** The API's OpenAPI document, built once. */
export function openApiDocument(): OpenApiDocument {
  built ??= buildOpenApiDocument(apiContracts);
  return built;
}
