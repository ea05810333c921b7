// Pays for one generation with USDC through x402: no account, no API key, only a wallet.
// Against `npm start`: node examples/pay-per-call.mjs
import { ExactEvmScheme } from "@x402/evm/exact/client";
import { wrapFetchWithPaymentFromConfig } from "@x402/fetch";
import { privateKeyToAccount } from "viem/accounts";

const api = process.env.POLYFORGE_API_URL ?? "http://localhost:3000";
// anvil's public test wallet #1, which `npm start` funds with dev USDC. Never a real key.
const wallet = privateKeyToAccount(
  process.env.PAYER_PRIVATE_KEY ??
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
);

const payingFetch = wrapFetchWithPaymentFromConfig(fetch, {
  schemes: [{ network: "eip155:84532", client: new ExactEvmScheme(wallet) }],
  // x402 clients refuse any payment above $1 until their spend controls are raised.
  spendControls: { maxAmountPerPayment: "$5" },
});

// The first request gets 402 with the exact price; the client signs a USDC authorization for
// it and sends the request again with the payment attached.
const res = await payingFetch(`${api}/v1/generate`, {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ prompt: "a lighthouse at dusk", models: ["gpt-image-2"] }),
});
const paid = await res.json();
if (res.status !== 202) throw new Error(`${res.status}: ${JSON.stringify(paid)}`);
console.log(`paid ${paid.cost} credits in USDC, transaction ${paid.payment.transaction}`);

// The access token reads this generation (no API key needed).
for (;;) {
  const status = await fetch(`${api}/v1/generate/status?ids=${paid.generationId}`, {
    headers: { authorization: `Bearer ${paid.accessToken}` },
  }).then((r) => r.json());
  const generation = status.generations[paid.generationId];
  if (generation.status === "completed" || generation.status === "failed") {
    console.log(JSON.stringify(generation, null, 2));
    break;
  }
  await new Promise((resolve) => setTimeout(resolve, 500));
}
