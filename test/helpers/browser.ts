import { type Browser, type BrowserContext, chromium } from "playwright-core";
import type { Hex, LocalAccount, TypedDataDefinition } from "viem";

/**
 * Debian's chromium driven by playwright-core: never a downloaded browser. The flags keep it
 * off the network it would otherwise call at start (updates, sync, safe browsing); launch()
 * gives every run a fresh, empty profile.
 */
export const CHROMIUM = "/usr/bin/chromium";

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
}

/** eth_signTypedData_v4's JSON carries numbers as strings; viem signs uint fields as bigint. */
function typedDataOf(json: string): TypedDataDefinition {
  const { domain, types, primaryType, message } = JSON.parse(json);
  const { EIP712Domain: _, ...rest } = types as Record<string, { name: string; type: string }[]>;
  const fields = rest[primaryType] ?? [];
  const values: Record<string, unknown> = { ...message };
  for (const f of fields)
    if (/^u?int\d*$/.test(f.type) && values[f.name] !== undefined)
      values[f.name] = BigInt(values[f.name] as string);
  return {
    domain: { ...domain, ...(domain.chainId !== undefined && { chainId: Number(domain.chainId) }) },
    types: rest,
    primaryType,
    message: values,
  } as unknown as TypedDataDefinition;
}

/**
 * A test EIP-1193 wallet in the page: window.ethereum forwards every request to Node, where a
 * viem account holding one of anvil's public test keys answers it. So sign-in and payments
 * are really signed, and really settle on the local chain.
 */
export async function injectWallet(
  context: BrowserContext,
  account: LocalAccount,
  chainId: number,
): Promise<{ requests: string[] }> {
  const requests: string[] = [];
  await context.exposeFunction(
    "__polyforgeWallet",
    async (method: string, params: unknown[]): Promise<unknown> => {
      requests.push(method);
      switch (method) {
        case "eth_requestAccounts":
        case "eth_accounts":
          return [account.address];
        case "eth_chainId":
          return `0x${chainId.toString(16)}`;
        case "personal_sign":
          return account.signMessage({ message: { raw: params[0] as Hex } });
        case "eth_signTypedData_v4":
          return account.signTypedData(typedDataOf(params[1] as string));
        default:
          throw new Error(`the test wallet does not answer ${method}`);
      }
    },
  );
  // A string: it runs in the page, and the tests compile without DOM types.
  await context.addInitScript(`
    Object.defineProperty(window, "ethereum", {
      value: {
        isPolyforgeTestWallet: true,
        // Looked up at each call: the exposed binding may arrive after this script runs.
        request: ({ method, params }) => window.__polyforgeWallet(method, params ?? []),
        on: () => undefined,
        removeListener: () => undefined,
      },
    });
  `);
  return { requests };
}
