import type { Address, Hex } from "viem";
import type { LocalAccount } from "viem/accounts";
import { USDC } from "../../src/chain/networks.js";
import type { Network } from "../../src/lib/network.js";

export type Authorization = {
  from: Address;
  to: Address;
  value: bigint;
  validAfter: bigint;
  validBefore: bigint;
  nonce: Hex;
};

/** An EIP-3009 authorization signed for the network's USDC, as a wallet (or x402 client) signs it. */
export function signAuthorization(
  signer: LocalAccount,
  network: Network,
  message: Authorization,
  kind: "TransferWithAuthorization" | "ReceiveWithAuthorization" = "TransferWithAuthorization",
): Promise<Hex> {
  return signer.signTypedData({
    domain: {
      name: USDC[network].name,
      version: USDC[network].version,
      chainId: USDC[network].chainId,
      verifyingContract: USDC[network].address,
    },
    types: {
      [kind]: [
        { name: "from", type: "address" },
        { name: "to", type: "address" },
        { name: "value", type: "uint256" },
        { name: "validAfter", type: "uint256" },
        { name: "validBefore", type: "uint256" },
        { name: "nonce", type: "bytes32" },
      ],
    },
    primaryType: kind,
    message,
  });
}
