import { type ChildProcess, spawn } from "node:child_process";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import path from "node:path";

/**
 * A local chain: anvil's binary from its npm platform package, so it works offline. The
 * project depends on the Linux x64 package directly: the registry these machines use lacks
 * the other platforms' packages, which the `@foundry-rs/anvil` wrapper lists and `npm ci` then
 * demands.
 */
const require = createRequire(import.meta.url);
const ANVIL_BINARY = path.join(
  path.dirname(require.resolve("@foundry-rs/anvil-linux-amd64/package.json")),
  "bin",
  "anvil",
);

export interface Anvil {
  rpcUrl: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * The address to reach a server listening on `host`: a wildcard (every interface) is reached
 * on the loopback one, an IPv6 literal in brackets.
 */
export function reachableHost(host: string): string {
  if (host === "0.0.0.0") return "127.0.0.1";
  if (host === "::") return "[::1]";
  return host.includes(":") ? `[${host}]` : host;
}

export async function startAnvil(options: {
  chainId: number;
  port?: number | undefined;
  /** Interface to listen on; 127.0.0.1 unless given (0.0.0.0 in a container). */
  host?: string | undefined;
  /** Loaded from this file when it exists, and written back to it on exit. */
  state?: string | undefined;
}): Promise<Anvil> {
  const host = options.host ?? "127.0.0.1";
  const port = options.port || (await freePort());
  const args = [
    "--host",
    host,
    "--port",
    String(port),
    "--chain-id",
    String(options.chainId),
    "--silent",
    ...(options.state ? ["--state", options.state] : []),
  ];
  const child = spawn(ANVIL_BINARY, args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-2000);
  });
  const rpcUrl = `http://${reachableHost(host)}:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`anvil exited (${child.exitCode}): ${stderr}`);
    try {
      const res = await fetch(rpcUrl, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }),
      });
      if (res.ok) break;
    } catch {}
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`anvil did not answer on ${rpcUrl}: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    rpcUrl,
    process: child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}
