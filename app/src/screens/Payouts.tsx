import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, newIdempotencyKey } from "../api";
import { credits, shortHash } from "../money";
import type { Page } from "../types";
import { Empty, ErrorNote, Loading } from "../ui/states";

interface Payout {
  id: string;
  status: "pending" | "broadcast" | "paid" | "failed";
  credits: number;
  amountUsdc: string;
  to: string;
  transaction: string | null;
  failureReason: string | null;
  createdAt: string;
}

/**
 * Earnings sent as USDC to the wallet the account signed in with. Each request carries a new
 * Idempotency-Key, so a double click or a retried request pays once.
 */
export function PayoutsPanel({ apiKey, available }: { apiKey: string; available: number }) {
  const queryClient = useQueryClient();
  const payouts = useQuery({
    queryKey: ["payouts", apiKey],
    queryFn: () => api<Page<Payout>>("/v1/profile/payouts?limit=20", { token: apiKey }),
    // A broadcast payout is decided by the chain: look again until none is in flight.
    refetchInterval: (q) =>
      q.state.data?.data.some((p) => p.status === "pending" || p.status === "broadcast")
        ? 2000
        : false,
  });
  const request = useMutation({
    mutationFn: () =>
      api<Payout>("/v1/profile/payouts", {
        token: apiKey,
        method: "POST",
        headers: { "Idempotency-Key": newIdempotencyKey() },
      }),
    onSettled: () => {
      for (const key of ["payouts", "earnings", "balance"])
        queryClient.invalidateQueries({ queryKey: [key] });
    },
  });
  return (
    <div>
      <h3>Payouts</h3>
      <button
        type="button"
        disabled={available <= 0 || request.isPending}
        onClick={() => request.mutate()}
      >
        {request.isPending ? "Sending…" : `Pay out ${credits(available)} to my wallet`}
      </button>
      {request.isError && <ErrorNote error={request.error} />}
      {payouts.isPending && <Loading what="payouts" />}
      {payouts.isError && <ErrorNote error={payouts.error} />}
      {payouts.data?.data.length === 0 && <Empty>No payouts yet.</Empty>}
      {payouts.data && payouts.data.data.length > 0 && (
        <table data-testid="payouts">
          <thead>
            <tr>
              <th>When</th>
              <th>Credits</th>
              <th>USDC</th>
              <th>Status</th>
              <th>Transaction</th>
            </tr>
          </thead>
          <tbody>
            {payouts.data.data.map((p) => (
              <tr key={p.id}>
                <td>{new Date(p.createdAt).toLocaleString()}</td>
                <td>{p.credits}</td>
                <td>{p.amountUsdc}</td>
                <td>
                  {p.status}
                  {p.failureReason && ` (${p.failureReason})`}
                </td>
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
      )}
    </div>
  );
}
