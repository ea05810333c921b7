import type { NotificationSubscriber, Notifications } from "../../db/notifications.js";
import type { Logger } from "../../logger.js";
import type { Caller } from "../accounts/caller.js";

export type ApiKeyCaller = Extract<Caller, { kind: "api_key" }>;

/**
 * Where a key's revocation is announced: its id, NOTIFYed in the transaction that revokes it.
 * A revocation is the only change to what an authenticated key may do: a key's account and
 * network never change, no account is ever disabled, and its tier is not cached (the rate
 * limit reads it with its counter).
 */
export const API_KEY_REVOCATIONS_CHANNEL = "api_key_revocations";

export interface CachedApiKey {
  caller: ApiKeyCaller;
  /** When the key's use was last recorded (or found recorded), by the service's clock. */
  lastUsedAt: Date | null;
  /** performance.now() after which the entry is not used. */
  expiresAt: number;
}

export interface ApiKeyCacheSettings {
  /** How long an entry is used at most (a backstop: revocations evict entries at once). 0: off. */
  ttlMs: number;
  maxEntries: number;
}

/**
 * The callers of API keys recently presented to this process, keyed by the SHA-256 of the key
 * (never the key itself), so that an authenticated request needs no database round trip.
 *
 * A revoked key must fail on every process within a second: each revocation NOTIFYs the key's
 * id, which every process's listener receives and evicts, and the revoking process evicts it
 * itself as soon as the revocation commits. The cache is used only while its channel is
 * LISTENed on: when the listener loses its connection the cache is emptied and bypassed until
 * it listens again, since a notice missed meanwhile would otherwise let a revoked key through
 * until its entry expired. A lookup that started before an eviction (or before the listener came
 * back) does not store what it read, so a read that raced a revocation cannot outlive it.
 * Entries are bounded in number (least recently used go first) and expire after `ttlMs`.
 */
export class ApiKeyCache {
  private readonly byHash = new Map<string, CachedApiKey>();
  private readonly hashById = new Map<string, string>();
  /** Moves on at every eviction and every change of trust; a lookup stores only if unchanged. */
  private epoch = 0;
  private trusted = false;
  private subscribed = false;
  /** Lookups answered from the cache, and those that went to the database (for benchmarks). */
  hits = 0;
  misses = 0;

  constructor(
    private readonly notifications: Notifications | undefined,
    private readonly settings: ApiKeyCacheSettings,
    private readonly logger: Logger,
  ) {}

  get enabled(): boolean {
    return (
      this.notifications !== undefined && this.settings.ttlMs > 0 && this.settings.maxEntries > 0
    );
  }

  get size(): number {
    return this.byHash.size;
  }

  /** Whether the cache holds a live entry for this key hash (tests and diagnostics). */
  holds(keyHash: string): boolean {
    return this.byHash.has(keyHash);
  }

  /**
   * The cached entry of a key hash, when the cache may be trusted and holds a fresh one. Also
   * (re)starts listening for revocations when it is not.
   */
  get(keyHash: string): CachedApiKey | undefined {
    if (!this.enabled || !this.watch()) {
      this.misses++;
      return undefined;
    }
    const entry = this.byHash.get(keyHash);
    if (!entry || entry.expiresAt <= performance.now()) {
      if (entry) this.evict(keyHash, entry.caller.apiKeyId);
      this.misses++;
      return undefined;
    }
    // Most recently used last: the first entry is the one to drop when full.
    this.byHash.delete(keyHash);
    this.byHash.set(keyHash, entry);
    this.hits++;
    return entry;
  }

  /**
   * Taken before reading a key from the database: `put` stores what the read found only if
   * nothing was evicted, and the cache stayed trusted, in between. Undefined: do not store.
   */
  ticket(): number | undefined {
    return this.enabled && this.trusted ? this.epoch : undefined;
  }

  put(ticket: number | undefined, keyHash: string, caller: ApiKeyCaller, lastUsedAt: Date | null) {
    if (ticket === undefined || ticket !== this.epoch || !this.trusted) return;
    const previous = this.byHash.get(keyHash);
    if (previous) this.byHash.delete(keyHash);
    this.byHash.set(keyHash, {
      caller,
      lastUsedAt,
      expiresAt: performance.now() + this.settings.ttlMs,
    });
    this.hashById.set(caller.apiKeyId, keyHash);
    while (this.byHash.size > this.settings.maxEntries) {
      const [oldestHash, oldest] = this.byHash.entries().next().value as [string, CachedApiKey];
      this.evict(oldestHash, oldest.caller.apiKeyId);
    }
  }

  /** Evicts a key (revoked here, or announced revoked by any process). */
  forget(apiKeyId: string) {
    this.epoch++;
    const keyHash = this.hashById.get(apiKeyId);
    if (keyHash !== undefined) this.evict(keyHash, apiKeyId);
  }

  private evict(keyHash: string, apiKeyId: string) {
    this.byHash.delete(keyHash);
    if (this.hashById.get(apiKeyId) === keyHash) this.hashById.delete(apiKeyId);
  }

  private clear() {
    this.epoch++;
    this.byHash.clear();
    this.hashById.clear();
  }

  /** Whether revocations are being received; if not, asks the listener to listen (again). */
  private watch(): boolean {
    const notifications = this.notifications;
    if (!notifications || notifications.isClosed) return false;
    if (!this.subscribed) {
      this.subscribed = true;
      notifications.subscribe(API_KEY_REVOCATIONS_CHANNEL, this.subscriber);
    }
    if (this.trusted && notifications.isListening(API_KEY_REVOCATIONS_CHANNEL)) return true;
    if (this.trusted) this.distrust();
    notifications
      .listen(API_KEY_REVOCATIONS_CHANNEL)
      .catch((err: unknown) =>
        this.logger.debug({ err }, "not listening for key revocations; keys are read each time"),
      );
    return false;
  }

  private distrust() {
    this.trusted = false;
    this.clear();
  }

  private readonly subscriber: NotificationSubscriber = {
    notice: (apiKeyId) => {
      if (apiKeyId) this.forget(apiKeyId);
      else this.clear();
    },
    lost: () => this.distrust(),
    listening: () => {
      this.clear();
      this.trusted = true;
    },
  };
}
