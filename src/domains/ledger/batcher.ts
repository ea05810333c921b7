import type { ServiceContext } from "../../context.js";
import { GroupCommit } from "../../db/group-commit.js";
import type { AppError } from "../../errors.js";
import { type Transfer, type TransferInput, transfer, transferMany } from "./service.js";

/**
 * Group commit for standalone transfers (ones not inside a caller's transaction): transfers
 * that arrive while a batch is in flight go together in the next one (see GroupCommit), each
 * still succeeding or failing on its own.
 */
export class TransferBatcher {
  private readonly group: GroupCommit<TransferInput, Transfer | AppError>;

  constructor(ctx: ServiceContext, options?: { maxBatch: number; maxInFlight: number }) {
    this.group = new GroupCommit(
      (inputs) => transferMany(ctx, inputs),
      (input) => transfer(ctx, input),
      options,
    );
  }

  async submit(input: TransferInput): Promise<Transfer> {
    const result = await this.group.submit(input);
    if (result instanceof Error) throw result;
    return result;
  }
}
