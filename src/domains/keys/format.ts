import type { Network } from "../../lib/network.js";
import { randomBase62 } from "../../lib/secrets.js";

/** `sk_live_` or `sk_test_`, then 64 Base62 characters (about 381 bits of randomness). */
export const API_KEY_SECRET_LENGTH = 64;
const API_KEY_PATTERN = /^sk_(live|test)_[0-9A-Za-z]{64}$/;

export const apiKeyPrefix = (network: Network) => `sk_${network}_` as const;

export function generateApiKey(network: Network): string {
  return apiKeyPrefix(network) + randomBase62(API_KEY_SECRET_LENGTH);
}

/** The network a well-formed key belongs to, or undefined for anything malformed. */
export function apiKeyNetwork(token: string): Network | undefined {
  const match = API_KEY_PATTERN.exec(token);
  return match ? (match[1] as Network) : undefined;
}
