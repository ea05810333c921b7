import { EventEmitter } from "node:events";
import type pg from "pg";
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
 * them, and each API process LISTENs on one dedicated connection, opened on first use.
 * Waiters still re-read the database, so a missed notice only costs the fallback interval.
 */
export class GenerationEvents {
  private client: pg.PoolClient | undefined;
  private connecting: Promise<void> | undefined;
  private readonly emitter = new EventEmitter();
  private closed = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly logger: Logger,
  ) {
    this.emitter.setMaxListeners(0);
  }

  private listen(): Promise<void> {
    this.connecting ??= (async () => {
      const client = await this.pool.connect();
      client.on("notification", (message) => {
        try {
          const event = JSON.parse(message.payload ?? "{}") as Partial<GenerationEvent>;
          if (event.generationId) this.emitter.emit(event.generationId, event);
        } catch {
          this.logger.warn({ payload: message.payload }, "unreadable generation event");
        }
      });
      client.on("error", (err) => {
        // Reconnect on next use; waiters fall back to their interval meanwhile.
        this.logger.warn({ err }, "generation event listener lost its connection");
        this.client = undefined;
        this.connecting = undefined;
        client.release(err);
      });
      await client.query(`LISTEN ${GENERATION_EVENTS_CHANNEL}`);
      this.client = client;
    })().catch((err: unknown) => {
      this.connecting = undefined;
      throw err;
    });
    return this.connecting;
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
    const client = this.client;
    this.client = undefined;
    if (client) {
      await client.query(`UNLISTEN ${GENERATION_EVENTS_CHANNEL}`).catch(() => {});
      client.release();
    }
  }
}
