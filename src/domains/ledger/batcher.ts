import type { ServiceContext } from "../../context.js";
import type { AppError } from "../../errors.js";
import { type Transfer, type TransferInput, transfer, transferMany } from "./service.js";

interface Pending {
  input: TransferInput;
  resolve: (transfer: Transfer) => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit for standalone transfers (ones not inside a caller's transaction). A debit on a
 * user account holds that row's lock until its commit, so one hot account is limited to one
 * commit (one WAL flush) at a time. Transfers that arrive while a batch is in flight wait and
 * go together in the next one: one statement, one commit, each transfer still succeeding or
 * failing on its own. At low load a transfer goes at once, so nothing waits for a timer.
 */
export class TransferBatcher {
  private queue: Pending[] = [];
  private inFlight = 0;

  constructor(
    private readonly ctx: ServiceContext,
    private readonly options: { maxBatch: number; maxInFlight: number } = {
      maxBatch: 256,
      maxInFlight: 2,
    },
  ) {}

  submit(input: TransferInput): Promise<Transfer> {
    return new Promise<Transfer>((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      if (this.inFlight < this.options.maxInFlight) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.inFlight++;
    try {
      while (this.queue.length) {
        const batch = this.queue.splice(0, this.options.maxBatch);
        await this.run(batch);
      }
    } finally {
      this.inFlight--;
    }
  }

  private async run(batch: Pending[]): Promise<void> {
    let results: Array<Transfer | AppError>;
    try {
      results = await transferMany(
        this.ctx,
        batch.map((p) => p.input),
      );
    } catch {
      // An unexpected failure (a bad account id, a lost connection) must not fail the others:
      // each is retried alone, and ids make a retry of one that did commit a replay.
      await Promise.all(batch.map((p) => transfer(this.ctx, p.input).then(p.resolve, p.reject)));
      return;
    }
    results.forEach((result, i) => {
      const pending = batch[i] as Pending;
      if (result instanceof Error) pending.reject(result);
      else pending.resolve(result);
    });
  }
}
