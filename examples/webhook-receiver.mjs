// Receives Polyforge's webhooks on this machine and verifies each one, for trying webhooks
// with `npm start`. The API refuses loopback URLs (its SSRF guard), so start the stack with
// this receiver's address allowed:
//   SSRF_ALLOW_HOSTS=localhost:4000 npm start
//   POLYFORGE_WEBHOOK_SECRET=whsec_… node examples/webhook-receiver.mjs
// then pass "webhookUrl":"http://localhost:4000/hooks" on any generation.
import { createServer } from "node:http";
import { Webhook } from "standardwebhooks";

const secret = process.env.POLYFORGE_WEBHOOK_SECRET;
if (!secret) throw new Error("Set POLYFORGE_WEBHOOK_SECRET (GET /v1/webhooks/secret shows it).");
const webhook = new Webhook(secret);
const port = Number(process.env.WEBHOOK_RECEIVER_PORT ?? 4000);

function receive(req, res) {
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    const body = Buffer.concat(chunks).toString("utf8");
    try {
      const event = webhook.verify(body, req.headers);
      console.log(`${event.type} ${event.data.generationId} ${event.data.status} (verified)`);
      res.writeHead(204).end();
    } catch (err) {
      // Anything not signed with the secret is refused; Polyforge retries only a non-2xx.
      console.log(`refused a delivery: ${err.message}`);
      res.writeHead(400).end();
    }
  });
}

// On both loopback addresses, whichever one `localhost` resolves to first.
createServer(receive).listen(port, "127.0.0.1", () =>
  console.log(`listening on http://localhost:${port}/hooks`),
);
createServer(receive)
  .on("error", () => {}) // a machine without IPv6
  .listen(port, "::1");
