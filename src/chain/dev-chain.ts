import { readFile, rm, writeFile } from "node:fs/promises";
import { createPublicClient, http } from "viem";
import { z } from "zod";
import type { Config } from "../config.js";
import { type LocalChain, localPaymentConfig, withLocalTestChain } from "./local-chain.js";
import { USDC } from "./networks.js";

/**
 * What `polyforge dev` records about its running local chain, so that the other commands
 * (`payments reconcile`, `serve`, `worker`…) run against the same data directory find it
 * without any X402_* variable. The keys it pays and settles with are anvil's public test keys,
 * derived again from the RPC URL by withLocalTestChain, so the file holds no secret.
 */
const devChainRecord = z.object({
  rpcUrl: z.url({ protocol: /^https?$/ }),
  network: z.literal("test"),
  chainId: z.literal(USDC.test.chainId),
  payTo: z.string(),
  usdcAddress: z.string(),
  pid: z.number().int(),
});
export type DevChainRecord = z.infer<typeof devChainRecord>;

export async function recordDevChain(config: Config, chain: LocalChain): Promise<void> {
  const local = localPaymentConfig(chain.rpcUrl, "test");
  const record: DevChainRecord = {
    rpcUrl: chain.rpcUrl,
    network: "test",
    chainId: USDC.test.chainId,
    payTo: local.payTo,
    usdcAddress: local.usdcAddress,
    pid: process.pid,
  };
  await writeFile(config.localChain.devRecordPath, `${JSON.stringify(record, null, 2)}\n`);
}

export function forgetDevChain(config: Config): Promise<void> {
  return rm(config.localChain.devRecordPath, { force: true });
}

/** How a command's configuration came to take (or not take) test payments. */
export type DevChainAttachment =
  | { state: "configured" }
  | { state: "absent" }
  | { state: "attached"; rpcUrl: string }
  /** A record was found, but its chain does not answer as the dev stack's: `detail` says how. */
  | { state: "unreachable"; detail: string };

/**
 * The configuration with the running dev stack's chain as its test network, when the
 * environment configures no test network itself (the environment always wins) and outside
 * production. A recorded chain that does not answer as Base Sepolia's stand-in is left out and
 * reported as unreachable: the dev stack that wrote it is gone.
 */
export async function attachDevChain(
  config: Config,
): Promise<{ config: Config; devChain: DevChainAttachment }> {
  if (config.env === "production" || config.payments.networks.test) {
    return { config, devChain: { state: "configured" } };
  }
  const raw = await readFile(config.localChain.devRecordPath, "utf8").catch(() => undefined);
  if (raw === undefined) return { config, devChain: { state: "absent" } };
  let record: DevChainRecord;
  try {
    record = devChainRecord.parse(JSON.parse(raw));
  } catch {
    return { config, devChain: { state: "unreachable", detail: "the record is not readable" } };
  }
  const client = createPublicClient({
    transport: http(record.rpcUrl, { retryCount: 0, timeout: 5_000 }),
  });
  let reported: number;
  try {
    reported = await client.getChainId();
  } catch (err) {
    const reason = (err as Error).message.split("\n")[0];
    return {
      config,
      devChain: {
        state: "unreachable",
        detail: `its chain at ${record.rpcUrl} does not answer (${reason})`,
      },
    };
  }
  if (reported !== record.chainId) {
    return {
      config,
      devChain: {
        state: "unreachable",
        detail: `the RPC at ${record.rpcUrl} is chain ${reported}, not its chain ${record.chainId}`,
      },
    };
  }
  return {
    config: withLocalTestChain(config, record.rpcUrl),
    devChain: { state: "attached", rpcUrl: record.rpcUrl },
  };
}

/** Why a command that needs the test network has none, in words an operator can act on. */
export function noTestNetworkMessage(config: Config, devChain: DevChainAttachment): string {
  if (devChain.state === "unreachable") {
    return `The dev stack is not running: ${devChain.detail} (recorded in ${config.localChain.devRecordPath}). Start it with \`npm start\`, or set X402_TEST_RPC_URL.`;
  }
  return `No network takes payments: start the dev stack (\`npm start\`) with this data directory (${config.dataDir}), or set X402_TEST_RPC_URL or X402_LIVE_RPC_URL.`;
}
