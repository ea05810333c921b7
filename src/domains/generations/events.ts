import { EventEmitter } from "node:events";
import type pg from "pg";
import { Notifications } from "../../db/notifications.js";
import type { Logger } from "../../logger.js";

export const GENERATION_EVENTS_CHANNEL = "generation_events";

/** What a NOTIFY on the channel carries. */
export interface GenerationEvent {
  generationId: string;
  resultId: string;
  status: string;
  progress?: number;
}

/**
 * Wakes requests that wait for a generation (the synchronous images endpoint) the moment a
 * result settles, whichever process settled it: results NOTIFY in the transaction that settles
 * them, and each API process LISTENs on its one notification connection (src/db/notifications.ts),
 * opened on first use. Waiters still re-read the database, so a missed notice only costs the
 * fallback interval.
 *
 * Built over the process's shared listener, or over a pool (a listener of its own). Either way
 * close() closes that listener too: every process closes its generation events before its pool.
 */
export class GenerationEvents {
  private readonly notifications: Notifications;
  private unsubscribe: (() => void) | undefined;
  private readonly emitter = new EventEmitter();
  private closed = false;

  constructor(
    source: pg.Pool | Notifications,
    private readonly logger: Logger,
  ) {
    this.emitter.setMaxListeners(0);
    this.notifications =
      source instanceof Notifications ? source : new Notifications(source, logger);
  }

  private listen(): Promise<void> {
    if (this.closed || this.notifications.isClosed) {
      return Promise.reject(new Error("generation events are closed"));
    }
    this.unsubscribe ??= this.notifications.subscribe(GENERATION_EVENTS_CHANNEL, {
      notice: (payload) => {
        try {
          const event = JSON.parse(payload || "{}") as Partial<GenerationEvent>;
          if (event.generationId) this.emitter.emit(event.generationId, event);
        } catch {
          this.logger.warn({ payload }, "unreadable generation event");
        }
      },
    });
    return this.notifications.listen(GENERATION_EVENTS_CHANNEL);
  }

  /**
   * Resolves when a result of one of `ids` settles, after `timeoutMs`, or when `signal` aborts,
   * whichever is first.
   */
  async next(ids: string[], timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.closed || signal?.aborted) return;
    await this.listen().catch((err: unknown) =>
      this.logger.warn({ err }, "cannot listen for generation events"),
    );
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        for (const id of ids) this.emitter.off(id, done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      for (const id of ids) this.emitter.once(id, done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  /**
   * Calls `listener` on every event of one generation (a result started, progressed or
   * settled) until the returned function is called.
   */
  async subscribe(generationId: string, listener: (event: GenerationEvent) => void) {
    await this.listen();
    this.emitter.on(generationId, listener);
    return () => {
      this.emitter.off(generationId, listener);
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.unsubscribe?.();
    await this.notifications.close();
  }
}
