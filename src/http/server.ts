import { type IncomingMessage, maxHeaderSize, type ServerResponse, STATUS_CODES } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type express from "express";
import type { AppContext } from "../context.js";
import { AppError } from "../errors.js";
import { newId } from "../lib/ids.js";
import { createHttpApp } from "./app.js";

export interface HttpServer {
  /** Where the server listens, e.g. http://127.0.0.1:3000. */
  url: string;
  port: number;
  /**
   * Stops accepting connections, tells waiting requests to answer now (the context's shutdown
   * signal), lets in-flight requests finish with `Connection: close`, then drops the rest.
   */
  close(): Promise<void>;
}

export async function startHttpServer(ctx: AppContext): Promise<HttpServer> {
  const { host, port, shutdownTimeoutMs } = ctx.config.http;
  return listen(createHttpApp(ctx), { host, port, shutdownTimeoutMs, shutdown: ctx.shutdown });
}

/**
 * What Node's HTTP parser refuses before any request exists (express never sees it), answered
 * in the service's error shape instead of Node's bare status line. Headers past Node's limit
 * (maxHeaderSize, 16 KB by default) are 431 request_header_too_large; anything else
 * unparseable is 400; a request that timed out gets Node's own 408.
 */
export function answerClientError(
  err: Error & { code?: string },
  socket: Socket & { _httpMessage?: { headersSent: boolean } | null },
): void {
  // While an answer is being written on this socket (pipelined requests), another would
  // corrupt it: as Node itself does, answer only when none has started. A keep-alive socket's
  // earlier, finished answers do not count.
  if (!socket.writable || socket._httpMessage?.headersSent) {
    socket.destroy(err);
    return;
  }
  const response =
    err.code === "ERR_HTTP_REQUEST_TIMEOUT"
      ? "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n"
      : errorResponse(
          err.code === "HPE_HEADER_OVERFLOW"
            ? new AppError(
                "request_header_too_large",
                `The request's headers are too large (more than ${Math.floor(maxHeaderSize / 1024)} KB together); send shorter ones.`,
              )
            : new AppError("invalid_request", "The request is not valid HTTP."),
        );
  // Closed once the answer is flushed: the rest of what the client sends is never read.
  socket.end(response, () => socket.destroy());
}

/** A whole HTTP/1.1 response carrying `error` in the service's error shape. */
function errorResponse(error: AppError): string {
  const requestId = newId("req");
  const body = JSON.stringify({ error: { code: error.code, message: error.message, requestId } });
  return (
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status]}\r\n` +
    "Content-Type: application/json; charset=utf-8\r\n" +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    `X-Request-Id: ${requestId}\r\n` +
    "Connection: close\r\n\r\n" +
    body
  );
}

/** Serves an express app on host:port until close(). */
export async function listen(
  app: express.Express,
  options: { host: string; port: number; shutdownTimeoutMs: number; shutdown?: AbortController },
): Promise<HttpServer> {
  const server = app.listen(options.port, options.host);
  server.on("clientError", answerClientError);
  // Answers not yet started, so that a shutdown can close their keep-alive connections.
  const unanswered = new Set<ServerResponse>();
  let stopping = false;
  // Before express, so the header is set before any handler can answer.
  server.prependListener("request", (_req: IncomingMessage, res: ServerResponse) => {
    // A request arriving on a kept-alive connection during the shutdown is served, then the
    // connection closes: the client's next request goes to another instance, never to a reset.
    if (stopping) {
      res.setHeader("Connection", "close");
      return;
    }
    unanswered.add(res);
    const done = () => {
      unanswered.delete(res);
      // An answer that went out during the shutdown leaves its connection idle: close it now
      // rather than at the forced close.
      if (stopping) setImmediate(() => server.closeIdleConnections());
    };
    res.once("finish", done);
    res.once("close", done);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("listening", resolve);
    server.once("error", reject);
  });
  const address = server.address() as AddressInfo;
  const urlHost = address.family === "IPv6" ? `[${address.address}]` : address.address;

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= new Promise<void>((resolve) => {
      stopping = true;
      for (const res of unanswered) if (!res.headersSent) res.setHeader("Connection", "close");
      unanswered.clear();
      // Waiting requests answer now (a 202 with the id, a stream's reconnect event).
      options.shutdown?.abort();
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
