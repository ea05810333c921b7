import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { api } from "../api";
import { useSignedIn } from "../auth";
import { credits, shortHash, usdcFromUnits } from "../money";
import { NETWORKS } from "../networks";
import { buyPack, fetchPackOffer, PACK_IDS, PACKS, type PackId, type PackOffer } from "../packs";
import type { Balance, LedgerEntry, Page, Payment } from "../types";
import { Empty, ErrorNote, Loading } from "../ui/states";
import { connectWallet } from "../wallet";

export function useBalance(apiKey: string) {
  return useQuery({
    queryKey: ["balance", apiKey],
    queryFn: () => api<Balance>("/v1/balance", { token: apiKey }),
  });
}

function BalanceCard({ apiKey }: { apiKey: string }) {
  const balance = useBalance(apiKey);
  if (balance.isPending) return <Loading what="the balance" />;
  if (balance.isError) return <ErrorNote error={balance.error} retry={() => balance.refetch()} />;
  const b = balance.data;
  return (
    <dl className="facts balance" data-testid="balance">
      <dt>Balance</dt>
      <dd data-testid="credit-balance">{credits(b.creditBalance)}</dd>
      <dt>Held for work in flight</dt>
      <dd>{credits(b.heldCredits)}</dd>
      <dt>Creator earnings</dt>
      <dd>{credits(b.earnings)}</dd>
      <dt>Membership tier</dt>
      <dd data-testid="tier">{b.membershipTier}</dd>
    </dl>
  );
}

/** Pick a pack, see exactly what the API asks for, then sign with the wallet. */
function BuyPack({ apiKey }: { apiKey: string }) {
  const queryClient = useQueryClient();
  const [offer, setOffer] = useState<PackOffer | null>(null);
  const ask = useMutation({
    mutationFn: (pack: PackId) => fetchPackOffer(pack, apiKey),
    onSuccess: setOffer,
  });
  const pay = useMutation({
    mutationFn: async (o: PackOffer) => buyPack(o, apiKey, await connectWallet()),
    onSuccess: () => {
      setOffer(null);
      for (const key of ["balance", "transactions", "payments"])
        queryClient.invalidateQueries({ queryKey: [key] });
    },
  });
  return (
    <div className="buy">
      <h2>Buy credits</h2>
      <div className="row">
        {PACK_IDS.map((id) => (
          <button
            key={id}
            type="button"
            disabled={ask.isPending || pay.isPending}
            onClick={() => {
              pay.reset();
              ask.mutate(id);
            }}
          >
            {id}: {credits(PACKS[id].credits)} for ${PACKS[id].usd}
          </button>
        ))}
      </div>
      {ask.isPending && <Loading what="the price" />}
      {ask.isError && <ErrorNote error={ask.error} />}
      {offer && (
        <section className="confirm" aria-label="Confirm payment">
          <p data-testid="pay-summary">
            Pay <strong>{usdcFromUnits(offer.amount)}</strong> on{" "}
            <strong>
              {NETWORKS[offer.network].chainName} ({offer.caip2})
            </strong>{" "}
            to <code>{offer.payTo}</code> for the {offer.pack} pack. {NETWORKS[offer.network].note}.
          </p>
          <div className="row">
            <button type="button" disabled={pay.isPending} onClick={() => pay.mutate(offer)}>
              {pay.isPending ? "Waiting for the wallet and the chain…" : "Sign and pay"}
            </button>
            <button type="button" className="link" onClick={() => setOffer(null)}>
              Cancel
            </button>
          </div>
        </section>
      )}
      {pay.isError && <ErrorNote error={pay.error} />}
      {pay.data && (
        <p role="status" data-testid="purchase">
          Bought {credits(pay.data.credits)}. Payment {pay.data.payment.status}
          {pay.data.payment.transaction && (
            <>
              , transaction <code>{pay.data.payment.transaction}</code>
            </>
          )}
          .
        </p>
      )}
    </div>
  );
}

function Transactions({ apiKey }: { apiKey: string }) {
  const list = useQuery({
    queryKey: ["transactions", apiKey],
    queryFn: () => api<Page<LedgerEntry>>("/v1/transactions?limit=50", { token: apiKey }),
  });
  if (list.isPending) return <Loading what="transactions" />;
  if (list.isError) return <ErrorNote error={list.error} retry={() => list.refetch()} />;
  if (list.data.data.length === 0) return <Empty>No transactions yet.</Empty>;
  return (
    <div className="scroll">
      <table>
        <thead>
          <tr>
            <th>When</th>
            <th>Kind</th>
            <th>Account</th>
            <th>Amount</th>
            <th>Balance after</th>
            <th>Reference</th>
          </tr>
        </thead>
        <tbody>
          {list.data.data.map((t) => (
            <tr key={t.id}>
              <td>{new Date(t.createdAt).toLocaleString()}</td>
              <td>{t.kind}</td>
              <td>{t.account}</td>
              <td className={t.amount < 0 ? "neg" : "pos"}>{t.amount}</td>
              <td>{t.balanceAfter}</td>
              <td>
                <code>{t.reference ?? "—"}</code>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Payments({ apiKey }: { apiKey: string }) {
  const list = useQuery({
    queryKey: ["payments", apiKey],
    queryFn: () => api<Page<Payment>>("/v1/payments?limit=50", { token: apiKey }),
  });
  if (list.isPending) return <Loading what="payments" />;
  if (list.isError) return <ErrorNote error={list.error} retry={() => list.refetch()} />;
  if (list.data.data.length === 0) return <Empty>No USDC payments yet.</Empty>;
  return (
    <div className="scroll">
      <table data-testid="payments">
        <thead>
          <tr>
            <th>When</th>
            <th>What</th>
            <th>USDC</th>
            <th>Credits</th>
            <th>Status</th>
            <th>Transaction</th>
          </tr>
        </thead>
        <tbody>
          {list.data.data.map((p) => (
            <tr key={p.id}>
              <td>{new Date(p.createdAt).toLocaleString()}</td>
              <td>{p.pack ? `${p.pack} pack` : p.purpose}</td>
              <td>{p.amountUsdc}</td>
              <td>{p.credits}</td>
              <td>{p.status}</td>
              <td>
                {p.transaction ? (
                  <code title={p.transaction}>{shortHash(p.transaction)}</code>
                ) : (
                  "—"
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function CreditsScreen() {
  const { apiKey } = useSignedIn();
  return (
    <section aria-labelledby="credits-title">
      <h1 id="credits-title">Credits</h1>
      <BalanceCard apiKey={apiKey} />
      <BuyPack apiKey={apiKey} />
      <h2>Payments</h2>
      <Payments apiKey={apiKey} />
      <h2>Transactions</h2>
      <Transactions apiKey={apiKey} />
    </section>
  );
}
