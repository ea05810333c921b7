// Generated from openapi.json by packages/client/scripts/types.ts: do not edit.

/** The POST routes that take an Idempotency-Key header (the client sends one by default). */
export const IDEMPOTENT_POSTS: readonly string[] = [
  "/v1/api-keys",
  "/v1/profile/payouts",
  "/v1/studio/reserve",
  "/v1/generate",
  "/v1/generate/batch",
  "/v1/images/generations",
  "/v1/videos/jobs",
  "/v1/passes",
  "/v1/templates",
  "/v1/workflows",
  "/v1/workflows/{id}/run",
];
