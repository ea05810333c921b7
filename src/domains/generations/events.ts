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
  private releaseClient: (() => void) | undefined;
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
    if (this.closed) return Promise.reject(new Error("generation events are closed"));
    this.connecting ??= (async () => {
      const client = await this.pool.connect();
      // The client goes back to the pool exactly once, whichever comes first: its connection
      // failing or close(). pg-pool throws on a second release, and the error handler stays
      // on the client after close() released it, so without the guard a connection error at
      // shutdown (the pool ending) released it again and crashed the process.
      let released = false;
      const release = (err?: Error) => {
        if (released) return;
        released = true;
        client.removeAllListeners("notification");
        if (this.client === client) this.client = undefined;
        // Destroyed rather than reused: its session is the one that LISTENs.
        client.release(err ?? true);
      };
      client.on("notification", (message) => {
        try {
          const event = JSON.parse(message.payload ?? "{}") as Partial<GenerationEvent>;
          if (event.generationId) this.emitter.emit(event.generationId, event);
        } catch {
          this.logger.warn({ payload: message.payload }, "unreadable generation event");
        }
      });
      client.on("error", (err) => {
        if (released) return;
        // Reconnect on next use; waiters fall back to their interval meanwhile.
        this.logger.warn({ err }, "generation event listener lost its connection");
        this.connecting = undefined;
        release(err);
      });
      try {
        await client.query(`LISTEN ${GENERATION_EVENTS_CHANNEL}`);
      } catch (err) {
        release(err as Error);
        throw err;
      }
      // Closed while connecting: nothing will release it later.
      if (this.closed) {
        release();
        return;
      }
      this.client = client;
      this.releaseClient = release;
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
    const release = this.releaseClient;
    this.releaseClient = undefined;
    if (client && release) {
      await client.query(`UNLISTEN ${GENERATION_EVENTS_CHANNEL}`).catch(() => {});
      release();
    }
  }
}
