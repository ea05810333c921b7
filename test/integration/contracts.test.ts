import {
  type Address,
  createPublicClient,
  createWalletClient,
  type Hex,
  http,
  parseSignature,
} from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Anvil, startAnvil } from "../../src/chain/anvil.js";
import { artifact } from "../../src/chain/artifacts.js";
import { compileContracts } from "../../src/chain/compile.js";
import { ANVIL_DEPLOYER_KEY, installDevContracts } from "../../src/chain/dev-contracts.js";
import { MULTICALL3_ADDRESS, USDC } from "../../src/chain/networks.js";
import { signAuthorization } from "../helpers/eip3009.js";

/**
 * The dev USDC on a real anvil at Base Sepolia's chain id and USDC address: EIP-3009
 * authorizations with random nonces transfer once; replays, expired, early and forged ones fail.
 */
let anvil: Anvil;
const usdc = artifact("DevUSDCBaseSepolia");
const token = USDC.test.address as Address;
const relayer = privateKeyToAccount(ANVIL_DEPLOYER_KEY);
let publicClient: ReturnType<typeof createPublicClient>;
let relayerClient: ReturnType<typeof createWalletClient>;

beforeAll(async () => {
  anvil = await startAnvil({ chainId: USDC.test.chainId });
  await installDevContracts(anvil.rpcUrl, "test");
  publicClient = createPublicClient({ transport: http(anvil.rpcUrl) });
  relayerClient = createWalletClient({ account: relayer, transport: http(anvil.rpcUrl) });
}, 30_000);

afterAll(async () => {
  await anvil?.stop();
});

const read = <T>(functionName: string, args: unknown[] = []) =>
  publicClient.readContract({ address: token, abi: usdc.abi, functionName, args }) as Promise<T>;

async function send(functionName: string, args: unknown[]) {
  const hash = await relayerClient.writeContract({
    address: token,
    abi: usdc.abi,
    functionName,
    args,
    chain: null,
    account: relayer,
  });
  return publicClient.waitForTransactionReceipt({ hash });
}

/** What an x402 client signs: a TransferWithAuthorization with a random 32-byte nonce. */
async function authorize(
  from: ReturnType<typeof privateKeyToAccount>,
  to: Address,
  value: bigint,
  window: { validAfter?: bigint; validBefore?: bigint } = {},
  signer = from,
  kind: "TransferWithAuthorization" | "ReceiveWithAuthorization" = "TransferWithAuthorization",
) {
  const now = BigInt(Math.floor(Date.now() / 1000));
  const message = {
    from: from.address,
    to,
    value,
    validAfter: window.validAfter ?? now - 60n,
    validBefore: window.validBefore ?? now + 600n,
    nonce: generatePrivateKey() as Hex,
  };
  const signature = await signAuthorization(signer, "test", message, kind);
  const { v, r, s } = parseSignature(signature);
  const args = [
    message.from,
    message.to,
    message.value,
    message.validAfter,
    message.validBefore,
    message.nonce,
    Number(v),
    r,
    s,
  ];
  return { message, args };
}

describe("contracts", () => {
  it("compiles offline to exactly the committed artifacts", () => {
    const fresh = compileContracts();
    for (const name of ["DevUSDCBaseSepolia", "DevUSDCBase", "Multicall3"]) {
      expect(fresh[name], name).toEqual(artifact(name));
    }
  });

  it("sits at Base Sepolia's USDC address with USDC's EIP-712 domain and 6 decimals", async () => {
    expect(await publicClient.getChainId()).toBe(84532);
    expect(await read<string>("name")).toBe("USDC");
    expect(await read<number>("decimals")).toBe(6);
    const domain = await read<readonly unknown[]>("eip712Domain");
    expect(domain.slice(1, 5)).toEqual(["USDC", "2", 84532n, token]);
    expect(await publicClient.getCode({ address: MULTICALL3_ADDRESS })).toMatch(
      /^0x[0-9a-f]{100,}/,
    );
  });

  it("moves a valid authorization once; a replay, an expired, an early or a forged one fails", async () => {
    const payer = privateKeyToAccount(generatePrivateKey());
    const payee = privateKeyToAccount(generatePrivateKey()).address;
    await send("mint", [payer.address, 5_000_000n]);

    const good = await authorize(payer, payee, 1_250_000n);
    expect(await read("authorizationState", [payer.address, good.message.nonce])).toBe(false);
    const receipt = await send("transferWithAuthorization", good.args);
    expect(receipt.status).toBe("success");
    expect(await read("balanceOf", [payee])).toBe(1_250_000n);
    expect(await read("balanceOf", [payer.address])).toBe(3_750_000n);
    expect(await read("authorizationState", [payer.address, good.message.nonce])).toBe(true);

    await expect(send("transferWithAuthorization", good.args)).rejects.toThrow(
      /ERC3009UsedAuthorization|reverted/,
    );
    const now = BigInt(Math.floor(Date.now() / 1000));
    const expired = await authorize(payer, payee, 1n, { validBefore: now - 10n });
    await expect(send("transferWithAuthorization", expired.args)).rejects.toThrow(
      /ERC3009InvalidAuthorizationTime|reverted/,
    );
    const early = await authorize(payer, payee, 1n, { validAfter: now + 3600n });
    await expect(send("transferWithAuthorization", early.args)).rejects.toThrow(
      /ERC3009InvalidAuthorizationTime|reverted/,
    );
    const mallory = privateKeyToAccount(generatePrivateKey());
    const forged = await authorize(payer, mallory.address, 1_000_000n, {}, mallory);
    await expect(send("transferWithAuthorization", forged.args)).rejects.toThrow(
      /ERC3009InvalidSignature|reverted/,
    );
    const tooMuch = await authorize(payer, payee, 10_000_000n);
    await expect(send("transferWithAuthorization", tooMuch.args)).rejects.toThrow(
      /ERC20InsufficientBalance|reverted/,
    );
    // Nothing moved after the first transfer.
    expect(await read("balanceOf", [payee])).toBe(1_250_000n);
    expect(await read("balanceOf", [payer.address])).toBe(3_750_000n);
  });

  it("receiveWithAuthorization only for the payee; cancelAuthorization burns the nonce", async () => {
    const payer = privateKeyToAccount(generatePrivateKey());
    await send("mint", [payer.address, 1_000_000n]);
    // The relayer is not the payee: receiveWithAuthorization refuses.
    const receive = "ReceiveWithAuthorization" as const;
    const stranger = privateKeyToAccount(generatePrivateKey()).address;
    const toOther = await authorize(payer, stranger, 1n, {}, payer, receive);
    await expect(send("receiveWithAuthorization", toOther.args)).rejects.toThrow(
      /ERC20InvalidReceiver|reverted/,
    );
    const toRelayer = await authorize(payer, relayer.address, 10n, {}, payer, receive);
    expect((await send("receiveWithAuthorization", toRelayer.args)).status).toBe("success");

    const later = await authorize(payer, relayer.address, 10n);
    const cancel = await payer.signTypedData({
      domain: { name: "USDC", version: "2", chainId: 84532, verifyingContract: token },
      types: {
        CancelAuthorization: [
          { name: "authorizer", type: "address" },
          { name: "nonce", type: "bytes32" },
        ],
      },
      primaryType: "CancelAuthorization",
      message: { authorizer: payer.address, nonce: later.message.nonce },
    });
    const { v, r, s } = parseSignature(cancel);
    await send("cancelAuthorization", [payer.address, later.message.nonce, Number(v), r, s]);
    await expect(send("transferWithAuthorization", later.args)).rejects.toThrow(
      /ERC3009UsedAuthorization|reverted/,
    );
  });
});
