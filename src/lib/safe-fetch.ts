import { lookup as dnsLookup } from "node:dns/promises";
import http from "node:http";
import https from "node:https";
import { BlockList, isIP, type LookupFunction } from "node:net";
import { AppError } from "../errors.js";

/**
 * The one way the service fetches a URL a user gave it (reference images, webhooks). It
 * refuses anything but http(s); resolves the host and checks every address it resolves to
 * (loopback, private, link-local, CGNAT, multicast, unspecified, reserved, documentation, and
 * the IPv4-mapped, NAT64 and 6to4 forms that smuggle those in); then connects to the checked
 * address itself, so a second DNS answer cannot switch it. Each redirect is checked again.
 * Bytes and time are capped. Refusals are 400 `unsafe_url` with the reason.
 */

const blocked = new BlockList();
for (const [net, prefix] of [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.0.2.0", 24],
  ["192.88.99.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["198.51.100.0", 24],
  ["203.0.113.0", 24],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4],
] as const) {
  blocked.addSubnet(net, prefix, "ipv4");
}
for (const [net, prefix] of [
  ["::", 128],
  ["::1", 128],
  ["100::", 64],
  ["2001::", 32],
  ["2001:db8::", 32],
  ["fc00::", 7],
  ["fe80::", 10],
  ["fec0::", 10],
  ["ff00::", 8],
] as const) {
  blocked.addSubnet(net, prefix, "ipv6");
}

/** The IPv4 address hidden in an IPv6 one (mapped, compatible, NAT64, 6to4), if any. */
function embeddedIpv4(address: string): string | undefined {
  const lower = address.toLowerCase();
  const dotted = /^(?:::ffff:|::ffff:0:|::|64:ff9b::|64:ff9b:1::)(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (dotted) return dotted[1];
  const groups = expandIpv6(lower);
  if (!groups) return undefined;
  const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  const [g0, g1, g2, g3, g4, g5, g6, g7] = groups as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0 && (g5 === 0xffff || g5 === 0))
    return v4(g6, g7); // mapped / compatible
  if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0xffff && g5 === 0) return v4(g6, g7); // IPv4-translated (::ffff:0:0/96)
  if (g0 === 0x64 && g1 === 0xff9b) return v4(g6, g7); // NAT64 (64:ff9b::/96, 64:ff9b:1::/48)
  if (g0 === 0x2002) return v4(g1, g2); // 6to4
  return undefined;
}

function expandIpv6(address: string): number[] | undefined {
  const [head, tail] = address.split("::");
  const parse = (part: string | undefined) =>
    part
      ? part
          .split(":")
          .filter(Boolean)
          .map((h) => Number.parseInt(h, 16))
      : [];
  const left = parse(head);
  const right = parse(tail);
  if (address.includes("::"))
    return [...left, ...new Array(8 - left.length - right.length).fill(0), ...right];
  return left.length === 8 ? left : undefined;
}

export function isBlockedAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return blocked.check(address, "ipv4");
  if (family === 6) {
    const v4 = embeddedIpv4(address);
    if (v4 && blocked.check(v4, "ipv4")) return true;
    return blocked.check(address, "ipv6");
  }
  return true; // not an address at all
}

export interface SafeFetchOptions {
  method?: "GET" | "POST";
  headers?: Record<string, string>;
  body?: string;
  maxBytes: number;
  timeoutMs: number;
  maxRedirects?: number;
  /** Follow redirects (reference images) or not (webhooks: a 3xx is an answer, not a hop). */
  followRedirects?: boolean;
  /** host:port pairs exempt from the address check: tests' local fixtures only, never production. */
  allowHosts?: readonly string[];
  /** DNS, replaceable in tests. */
  resolve?: (host: string) => Promise<Array<{ address: string; family: number }>>;
}

export interface SafeResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  url: string;
}

const DNS_TIMEOUT_MS = 5_000;

const refuse = (reason: string, url: string) =>
  new AppError("unsafe_url", `Refused to fetch ${url}: ${reason}.`, { reason });

async function checkedAddress(
  url: URL,
  options: SafeFetchOptions,
): Promise<{ address: string; family: number }> {
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw refuse(`the ${url.protocol} scheme is not allowed`, url.href);
  if (url.username || url.password) throw refuse("credentials in URLs are not allowed", url.href);
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  const exempt = options.allowHosts?.includes(`${host}:${port}`) ?? false;
  const literal = isIP(host);
  const resolve = options.resolve ?? ((h: string) => dnsLookup(h, { all: true, verbatim: true }));
  // A name server that never answers must not hold the request (or a libuv thread) for long.
  let timer: NodeJS.Timeout | undefined;
  const addresses = literal
    ? [{ address: host, family: literal }]
    : await Promise.race([
        resolve(host),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error("timeout")), DNS_TIMEOUT_MS);
        }),
      ])
        .catch(() => {
          throw refuse("the host does not resolve", url.href);
        })
        .finally(() => clearTimeout(timer));
  if (addresses.length === 0) throw refuse("the host does not resolve", url.href);
  for (const a of addresses) {
    if (!exempt && isBlockedAddress(a.address))
      throw refuse(`${host} resolves to ${a.address}, a private or reserved address`, url.href);
  }
  return addresses[0] as { address: string; family: number };
}

function request(
  url: URL,
  target: { address: string; family: number },
  options: SafeFetchOptions,
  signal: AbortSignal,
): Promise<SafeResponse> {
  // Connect to the address that was checked: no second lookup can change it.
  const lookup: LookupFunction = (_host, opts, callback) => {
    if ((opts as { all?: boolean }).all)
      (callback as (e: null, a: Array<{ address: string; family: number }>) => void)(null, [
        target,
      ]);
    else callback(null, target.address, target.family);
  };
  const client = url.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(
      url,
      {
        method: options.method ?? "GET",
        headers: options.headers,
        lookup,
        signal,
        servername: url.hostname,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        const declared = Number(res.headers["content-length"] ?? 0);
        if (declared > options.maxBytes) {
          res.destroy();
          return reject(refuse(`the body is larger than ${options.maxBytes} bytes`, url.href));
        }
        res.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > options.maxBytes) {
            res.destroy();
            reject(refuse(`the body is larger than ${options.maxBytes} bytes`, url.href));
          } else chunks.push(chunk);
        });
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
            url: url.href,
          }),
        );
        res.on("error", () =>
          reject(
            refuse(
              signal.aborted
                ? `no answer within ${options.timeoutMs} ms`
                : "the connection broke off during the body",
              url.href,
            ),
          ),
        );
      },
    );
    req.on("error", (err) => {
      if (signal.aborted) reject(refuse(`no answer within ${options.timeoutMs} ms`, url.href));
      else
        reject(
          refuse(
            `the connection failed (${(err as NodeJS.ErrnoException).code ?? err.message})`,
            url.href,
          ),
        );
    });
    req.end(options.body);
  });
}

/**
 * Checks a URL the way safeFetch would before connecting (scheme, credentials, every resolved
 * address), without fetching: for URLs used later, such as webhook endpoints given at submit.
 */
export async function checkUrl(
  input: string,
  options: Pick<SafeFetchOptions, "allowHosts" | "resolve"> = {},
): Promise<void> {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw refuse("it is not a valid URL", input);
  }
  await checkedAddress(url, { ...options, maxBytes: 0, timeoutMs: 0 });
}

export async function safeFetch(input: string, options: SafeFetchOptions): Promise<SafeResponse> {
  const signal = AbortSignal.timeout(options.timeoutMs);
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw refuse("it is not a valid URL", input);
  }
  const maxRedirects = options.maxRedirects ?? 3;
  for (let hop = 0; ; hop++) {
    const target = await checkedAddress(url, options);
    const res = await request(url, target, options, signal);
    const location = res.headers.location;
    if (!options.followRedirects || res.status < 300 || res.status >= 400 || !location) return res;
    if (hop >= maxRedirects) throw refuse(`more than ${maxRedirects} redirects`, input);
    try {
      url = new URL(location, url);
    } catch {
      throw refuse("it redirects to an invalid URL", input);
    }
  }
}
