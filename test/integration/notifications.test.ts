import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Notifications } from "../../src/db/notifications.js";
import { createLogger } from "../../src/logger.js";
import { createTestDatabase, type TestDatabase } from "../helpers/database.js";
import { until } from "../helpers/receiver.js";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.js";

const logger = createLogger({ logLevel: "silent" });
let database: TestDatabase;
let proxy: TcpProxy;
let direct: pg.Pool;
let viaProxy: pg.Pool;

beforeAll(async () => {
  database = await createTestDatabase({ migrated: false });
  const target = new URL(database.url);
  proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port) });
  const url = new URL(database.url);
  url.port = String(proxy.port);
  direct = new pg.Pool({ connectionString: database.url, max: 2 });
  viaProxy = new pg.Pool({ connectionString: url.toString(), max: 4 });
  viaProxy.on("error", () => {});
  viaProxy.on("connect", (client) => client.on("error", () => {}));
});
afterAll(async () => {
  await proxy?.close();
  await viaProxy?.end();
  await direct?.end();
  await database?.drop();
});

describe("the shared notification listener", () => {
  it("serves several channels on one connection, and finds out a connection that went silent", async () => {
    const notifications = new Notifications(viaProxy, logger, {
      heartbeatMs: 100,
      heartbeatTimeoutMs: 300,
    });
    const heard: string[] = [];
    const told: string[] = [];
    const subscriber = (channel: string) => ({
      notice: (payload: string) => heard.push(`${channel}:${payload}`),
      lost: () => told.push(`${channel}:lost`),
      listening: () => told.push(`${channel}:listening`),
    });
    try {
      notifications.subscribe("first_channel", subscriber("first"));
      notifications.subscribe("second_channel", subscriber("second"));
      await notifications.listen("first_channel");
      await notifications.listen("second_channel");
      const pid = notifications.backendPid;
      expect(viaProxy.totalCount).toBe(1);
      expect(told).toEqual(["first:listening", "second:listening"]);

      await direct.query(
        "select pg_notify('first_channel', 'a'), pg_notify('second_channel', 'b')",
      );
      await until("both notices", () => (heard.length === 2 ? true : undefined));
      expect(heard.sort()).toEqual(["first:a", "second:b"]);

      // The path to the server goes silent: no error, no answer, notices lost on the way.
      proxy.freeze();
      await until("the listener to find out", () => (told.length === 4 ? true : undefined));
      expect(told.slice(2).sort()).toEqual(["first:lost", "second:lost"]);
      expect(notifications.isListening("first_channel")).toBe(false);

      // The next use listens again, on a new connection, and hears what is sent from then on.
      await notifications.listen("first_channel");
      expect(notifications.isListening("second_channel")).toBe(true);
      expect(notifications.backendPid).not.toBe(pid);
      expect(told.slice(4)).toEqual(["first:listening", "second:listening"]);
      await direct.query("select pg_notify('second_channel', 'c')");
      await until("the notice after the loss", () =>
        heard.includes("second:c") ? true : undefined,
      );
    } finally {
      await notifications.close();
    }
    expect(told.slice(-2).sort()).toEqual(["first:lost", "second:lost"]);
  });
});
