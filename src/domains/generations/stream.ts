import { Router } from "express";
import type { AppContext } from "../../context.js";
import { notFound } from "../../errors.js";
import { keyScopeOf, readableGenerationIds } from "../../http/auth.js";
import { mountOn } from "../../http/mount.js";
import { generationContracts } from "./contract.js";
import { getGenerations } from "./history.js";
import { generationJson } from "./wire.js";

const HEARTBEAT_MS = 15_000;
/** A re-read even without a notice, so a notice lost while reconnecting costs at most this. */
const FALLBACK_READ_MS = 5_000;
/** What a stream cut by a shutdown tells the client to wait before reconnecting elsewhere. */
export const RECONNECT_RETRY_MS = 1_000;

/**
 * GET /v1/generate/:id/events: the generation as Server-Sent Events, for callers who would
 * rather wait than poll. A `status` event carries the whole generation object (as the status
 * endpoint has it) whenever a result starts, progresses or settles; a last `done` event carries
 * the final object, and the stream ends. Driven by PostgreSQL LISTEN/NOTIFY, so it works
 * whichever instance runs the job. When this process shuts down (a deploy), a last `reconnect`
 * event carries the object as it stands and a short `retry:`, and the stream ends: the client
 * reconnects (EventSource does so by itself) and another instance carries on.
 */
export function generationStreamRoutes(ctx: AppContext): Router {
  const router = Router();

  mountOn(router, ctx)(
    generationContracts.streamGenerationEvents,
    async ({ ctx, caller, params: { id }, req, res }) => {
      const scope = keyScopeOf(caller);
      // Listen for the hang-up before any await: a client gone early must leave nothing behind.
      let closed = false;
      let unsubscribe: (() => void) | undefined;
      const timers: NodeJS.Timeout[] = [];
      const stopping = ctx.shutdown.signal;
      let onStopping: (() => void) | undefined;
      const finish = () => {
        if (closed) return;
        closed = true;
        for (const t of timers) clearInterval(t);
        unsubscribe?.();
        if (onStopping) stopping.removeEventListener("abort", onStopping);
        res.end();
      };
      res.on("close", finish);
      const readable = readableGenerationIds(caller, [id]);
      const read = async () => (await getGenerations(ctx, scope, readable)).data[0];
      const first = await read();
      if (!first) {
        closed = true;
        throw notFound("Generation");
      }
      // Gone during authentication or the first read (its close event may have fired already).
      if (closed || req.socket.destroyed) {
        closed = true;
        return undefined;
      }

      res.writeHead(200, {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache, no-transform",
        connection: "keep-alive",
        "x-accel-buffering": "no",
      });
      res.write("retry: 2000\n\n");
      let sequence = 0;
      let lastSent = "";
      // A shutdown ends the stream with the object as last sent (or as first read), never cut.
      onStopping = () => {
        if (closed) return;
        const json = lastSent || JSON.stringify(generationJson(first));
        res.write(
          `retry: ${RECONNECT_RETRY_MS}\nid: ${++sequence}\nevent: reconnect\ndata: ${json}\n\n`,
        );
        finish();
      };
      if (stopping.aborted) {
        onStopping();
        return undefined;
      }
      stopping.addEventListener("abort", onStopping, { once: true });

      // Reads are serialized: each notice triggers one read, and a burst collapses into one.
      let reading = false;
      let again = false;
      const publish = async () => {
        if (closed) return;
        if (reading) {
          again = true;
          return;
        }
        reading = true;
        try {
          do {
            again = false;
            const generation = await read();
            if (!generation || closed) return;
            const json = JSON.stringify(generationJson(generation));
            const terminal = generation.status === "completed" || generation.status === "failed";
            if (json !== lastSent) {
              lastSent = json;
              res.write(`id: ${++sequence}\nevent: status\ndata: ${json}\n\n`);
            }
            if (terminal) {
              res.write(`id: ${++sequence}\nevent: done\ndata: ${json}\n\n`);
              finish();
              return;
            }
          } while (again);
        } catch (err) {
          req.log.warn({ err }, "generation stream read failed");
        } finally {
          reading = false;
        }
      };

      unsubscribe = await ctx.generationEvents
        .subscribe(id, () => void publish())
        .catch((err: unknown) => {
          req.log.warn({ err }, "cannot listen for generation events; falling back to reads");
          return undefined;
        });
      if (closed) {
        unsubscribe?.();
        return undefined;
      }
      timers.push(setInterval(() => void publish(), FALLBACK_READ_MS));
      timers.push(setInterval(() => res.write(": keep-alive\n\n"), HEARTBEAT_MS));
      await publish();
      return undefined;
    },
    { notFound: "Generation" },
  );

  return router;
}
