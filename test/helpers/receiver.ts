import type { AddressInfo } from "node:net";
import express from "express";

export interface ReceivedRequest {
  path: string;
  headers: Record<string, string>;
  body: string;
}

/**
 * A webhook receiver on loopback that records every POST and answers from a script of status
 * codes (a 3xx redirects elsewhere), 200 once the script runs out. Tests allow its host:port
 * through the SSRF guard with SSRF_ALLOW_HOSTS.
 */
export async function startReceiver() {
  const receiver = {
    url: "",
    hostPort: "",
    received: [] as ReceivedRequest[],
    script: [] as number[],
    reset() {
      receiver.received.length = 0;
      receiver.script.length = 0;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  const app = express();
  app.post(/.*/, express.text({ type: "*/*" }), (req, res) => {
    receiver.received.push({
      path: req.path,
      headers: req.headers as Record<string, string>,
      body: req.body as string,
    });
    const status = receiver.script.shift() ?? 200;
    if (status >= 300 && status < 400) res.redirect(status, "/elsewhere");
    else res.status(status).send("ok");
  });
  const server = app.listen(0, "127.0.0.1");
  await new Promise((r) => server.once("listening", r));
  const { port } = server.address() as AddressInfo;
  receiver.hostPort = `127.0.0.1:${port}`;
  receiver.url = `http://${receiver.hostPort}`;
  return receiver;
}

/** Waits until `check` returns something other than undefined, polling every 25 ms. */
export async function until<T>(
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
