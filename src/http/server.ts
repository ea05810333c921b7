import type { AddressInfo } from "node:net";
import type express from "express";
import type { AppContext } from "../context.js";
import { createHttpApp } from "./app.js";

export interface HttpServer {
  /** Where the server listens, e.g. http://127.0.0.1:3000. */
  url: string;
  port: number;
  /** Stops accepting connections, lets in-flight requests finish, then drops the rest. */
  close(): Promise<void>;
}

export async function startHttpServer(ctx: AppContext): Promise<HttpServer> {
  const { host, port, shutdownTimeoutMs } = ctx.config.http;
  return listen(createHttpApp(ctx), { host, port, shutdownTimeoutMs });
}

/** Serves an express app on host:port until close(). */
export async function listen(
  app: express.Express,
  options: { host: string; port: number; shutdownTimeoutMs: number },
): Promise<HttpServer> {
  const server = app.listen(options.port, options.host);
  await new Promise<void>((resolve, reject) => {
    server.once("listening", resolve);
    server.once("error", reject);
  });
  const address = server.address() as AddressInfo;
  const urlHost = address.family === "IPv6" ? `[${address.address}]` : address.address;

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= new Promise<void>((resolve) => {
      const force = setTimeout(() => server.closeAllConnections(), options.shutdownTimeoutMs);
      server.close(() => {
        clearTimeout(force);
        resolve();
      });
      // Keep-alive sockets with no request in flight would hold close() open.
      server.closeIdleConnections();
    });
    return closing;
  };
  return { url: `http://${urlHost}:${address.port}`, port: address.port, close };
}
