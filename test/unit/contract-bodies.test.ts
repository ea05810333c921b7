import { describe, expect, it } from "vitest";
import { contractOf, keyedBodies, type OperationId, successBodies } from "../helpers/contracts.js";

describe("the typed success bodies tests read", () => {
  it("are each route's own contract schemas", () => {
    for (const operationId of Object.keys(successBodies) as OperationId[]) {
      expect(contractOf(operationId).operationId).toBe(operationId);
    }
    expect(Object.keys(keyedBodies).every((op) => op in successBodies)).toBe(true);
  });
});
