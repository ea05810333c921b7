import { describe, expect, it } from "vitest";
import { contractsByOperation } from "../../src/http/openapi/routes.js";
import { contractOf, keyedBodies, type OperationId } from "../helpers/contracts.js";

describe("the typed success bodies tests read", () => {
  it("come from each route's own contract, and a keyed answer is one of its contract's", () => {
    for (const operationId of Object.keys(contractsByOperation) as OperationId[]) {
      expect(contractOf(operationId).operationId).toBe(operationId);
    }
    expect(Object.keys(keyedBodies).every((op) => op in contractsByOperation)).toBe(true);
  });
});
