// Every domain's tables, gathered for drizzle (queries) and drizzle-kit (migrations).
export * from "../domains/accounts/schema.js";
export * from "../domains/generations/applied-passes.js";
export * from "../domains/generations/schema.js";
export * from "../domains/idempotency/schema.js";
export * from "../domains/keys/schema.js";
export * from "../domains/ledger/schema.js";
export * from "../domains/passes/schema.js";
export * from "../domains/payments/schema.js";
export * from "../domains/payouts/schema.js";
export * from "../domains/ratelimits/schema.js";
export * from "../domains/routing/schema.js";
export * from "../domains/templates/schema.js";
export * from "../domains/uploads/schema.js";
export * from "../domains/webhooks/schema.js";
export * from "../domains/workers/schema.js";
export * from "../domains/workflows/schema.js";
export * from "./columns.js";
