import type pg from "pg";
import type { Logger } from "../logger.js";

/** What a channel's subscriber is told. */
export interface NotificationSubscriber {
  /** A NOTIFY on the channel, with its payload. */
  notice(payload: string): void;
  /**
   * The connection is gone (lost, or the listener closed): notices may be missed from now on,
   * until `listening` is called again.
   */
  lost?(): void;
  /**
   * The channel is LISTENed on (the first time, or again after a loss): every notice of a
   * transaction that commits from now on arrives.
   */
  listening?(): void;
}

/** A channel name, written into LISTEN as it is (they are constants of the code, never input). */
const CHANNEL_NAME = /^[a-z_][a-z0-9_]*$/;

/** How long after a failed connection attempt the next one may be made. */
const DEFAULT_RETRY_DELAY_MS = 1_000;
/**
 * How often the connection is checked, and how long the check may take. A connection that died
 * without an error (a peer or a NAT that dropped it silently) would otherwise look alive while
 * every notice is lost; the check also keeps an idle connection's path open.
 */
const DEFAULT_HEARTBEAT_MS = 5_000;
const DEFAULT_HEARTBEAT_TIMEOUT_MS = 2_000;

interface Session {
  client: pg.PoolClient;
  /** Channels this connection LISTENs on. */
  listened: Set<string>;
  /** LISTEN statements under way on it, by channel. */
  pending: Map<string, Promise<void>>;
  /** Whether its client went back to the pool (once, whatever comes first). */
  released: boolean;
  heartbeat?: NodeJS.Timeout;
  release(err?: Error): void;
}

/**
 * The process's one LISTEN connection, shared by every feature that waits for NOTIFYs
 * (generation events, API key revocations), one channel each. It connects on first use and,
 * after losing its connection, again on the next use (at most once a second while the database
 * does not answer). A connection that errors is lost at once; one that stops answering is found
 * out by a heartbeat within seconds. Subscribers are told when it loses the connection and when
 * a channel is listened on again, so one that must not miss a notice (a cache) knows when to
 * stop trusting what it holds.
 */
export class Notifications {
  private readonly channels = new Map<string, Set<NotificationSubscriber>>();
  private session: Session | undefined;
  private connecting: Promise<Session> | undefined;
  private retryAt = 0;
  private lastError: unknown;
  private closed = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly logger: Logger,
    private readonly options: {
      retryDelayMs?: number;
      heartbeatMs?: number;
      heartbeatTimeoutMs?: number;
    } = {},
  ) {}

  /** Whether `channel` is LISTENed on now: no notice of it can be missed while this holds. */
  isListening(channel: string): boolean {
    return this.session?.listened.has(channel) ?? false;
  }

  /** The server process id of the listening connection, if connected (for diagnostics). */
  get backendPid(): number | undefined {
    return (this.session?.client as { processID?: number } | undefined)?.processID;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Adds a subscriber to `channel` (told at once if the channel is listened on already);
   * nothing is LISTENed until `listen(channel)`. Returns the function that removes it.
   */
  subscribe(channel: string, subscriber: NotificationSubscriber): () => void {
    if (!CHANNEL_NAME.test(channel)) throw new Error(`not a channel name: ${channel}`);
    if (this.closed) throw new Error("the notification listener is closed");
    let subscribers = this.channels.get(channel);
    if (!subscribers) {
      subscribers = new Set();
      this.channels.set(channel, subscribers);
    }
    subscribers.add(subscriber);
    // Joining a channel already listened on: nothing would announce it otherwise.
    if (this.isListening(channel)) subscriber.listening?.();
    return () => {
      subscribers.delete(subscriber);
    };
  }

  /**
   * Resolves once `channel` is LISTENed on, connecting first if need be; rejects when that
   * fails (the next call tries again).
   */
  async listen(channel: string): Promise<void> {
    if (!this.channels.has(channel)) throw new Error(`nobody subscribed to ${channel}`);
    const session = await this.connect();
    if (session.listened.has(channel)) return;
    let pending = session.pending.get(channel);
    if (!pending) {
      pending = session.client.query(`LISTEN ${channel}`).then(
        () => {
          session.pending.delete(channel);
          if (session.released) throw new Error("the notification listener lost its connection");
          session.listened.add(channel);
          this.announceListening(channel);
        },
        (err: Error) => {
          session.pending.delete(channel);
          this.lose(session, err);
          throw err;
        },
      );
      session.pending.set(channel, pending);
    }
    await pending;
  }

  private connect(): Promise<Session> {
    if (this.closed) return Promise.reject(new Error("the notification listener is closed"));
    if (this.session) return Promise.resolve(this.session);
    if (this.connecting) return this.connecting;
    if (Date.now() < this.retryAt) return Promise.reject(this.lastError);
    const connecting = (async () => {
      const client = await this.pool.connect();
      const session: Session = {
        client,
        listened: new Set(),
        pending: new Map(),
        released: false,
        // The client goes back to the pool exactly once, whichever comes first: its connection
        // failing or close(). pg-pool throws on a second release, and the error handler stays
        // on the client after close() released it, so without the guard a connection error at
        // shutdown (the pool ending) would release it again and crash the process.
        release: (err?: Error) => {
          if (session.released) return;
          session.released = true;
          clearInterval(session.heartbeat);
          client.removeAllListeners("notification");
          // Destroyed rather than reused: its session is the one that LISTENs.
          client.release(err ?? true);
        },
      };
      client.on("notification", (message) => {
        const subscribers = this.channels.get(message.channel);
        for (const subscriber of subscribers ?? []) {
          try {
            subscriber.notice(message.payload ?? "");
          } catch (err) {
            this.logger.warn({ err, channel: message.channel }, "a notification subscriber failed");
          }
        }
      });
      client.on("error", (err) => {
        if (session.released) return;
        // Connect again on next use; subscribers know they may miss notices meanwhile.
        this.logger.warn({ err }, "the notification listener lost its connection");
        this.lose(session, err);
      });
      // Every channel subscribed to so far (one LISTEN each; Map iteration sees channels added
      // meanwhile). A failure here is a lost connection like any other.
      try {
        for (const channel of this.channels.keys()) {
          if (this.closed || session.released) break;
          await client.query(`LISTEN ${channel}`);
          session.listened.add(channel);
        }
      } catch (err) {
        session.release(err as Error);
        throw err;
      }
      // Closed while connecting: nothing will release it later.
      if (this.closed || session.released) {
        session.release();
        throw new Error("the notification listener is closed");
      }
      this.session = session;
      this.startHeartbeat(session);
      for (const channel of session.listened) this.announceListening(channel);
      return session;
    })();
    this.connecting = connecting;
    connecting.then(
      () => {
        if (this.connecting === connecting) this.connecting = undefined;
      },
      (err: unknown) => {
        if (this.connecting === connecting) this.connecting = undefined;
        this.lastError = err;
        this.retryAt = Date.now() + (this.options.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS);
      },
    );
    return connecting;
  }

  private startHeartbeat(session: Session) {
    let checking = false;
    session.heartbeat = setInterval(() => {
      if (checking || session.released) return;
      checking = true;
      session.client
        // node-postgres takes a per-query read timeout its types do not declare.
        .query({
          text: "select 1",
          query_timeout: this.options.heartbeatTimeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS,
        } as pg.QueryConfig)
        .then(
          () => {
            checking = false;
          },
          (err: Error) => {
            checking = false;
            if (session.released) return;
            this.logger.warn({ err }, "the notification listener's connection stopped answering");
            this.lose(session, err);
          },
        );
    }, this.options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS);
    session.heartbeat.unref();
  }

  private announceListening(channel: string) {
    for (const subscriber of this.channels.get(channel) ?? []) subscriber.listening?.();
  }

  private lose(session: Session, err?: Error) {
    const wasCurrent = this.session === session;
    session.release(err);
    if (wasCurrent) this.session = undefined;
    this.announceLost();
  }

  private announceLost() {
    for (const subscribers of this.channels.values()) {
      for (const subscriber of subscribers) subscriber.lost?.();
    }
  }

  /** Stops listening and lets the connection go; subscribers are told they lost it. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const session = this.session;
    this.session = undefined;
    if (session && !session.released) {
      await session.client.query("UNLISTEN *").catch(() => {});
      const client = session.client as pg.PoolClient & { _ended?: boolean };
      // Resolved once the connection is closed (bounded): after that its server process can
      // send nothing more (such as a shutdown's error) to a client the pool no longer has.
      const ended = new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 2_000);
        timer.unref();
        client.once("end", () => {
          clearTimeout(timer);
          resolve();
        });
      });
      session.release();
      if (!client._ended) await ended;
    }
    this.announceLost();
  }
}
