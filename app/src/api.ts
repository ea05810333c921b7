/**
 * The one way the app talks to Polyforge: the public HTTP API, same origin, with the caller's
 * bearer token. Every refusal becomes an ApiError carrying the API's stable error code.
 */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly body: unknown,
  ) {
    super(message);
  }
}

export interface RequestOptions {
  token?: string | null;
  method?: string;
  json?: unknown;
  form?: FormData;
  headers?: Record<string, string>;
}

export function authHeaders(token?: string | null): Record<string, string> {
  return token ? { authorization: `Bearer ${token}` } : {};
}

export async function readError(res: Response): Promise<ApiError> {
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {}
  const error = (body as { error?: { code?: string; message?: string } } | null)?.error;
  return new ApiError(
    res.status,
    error?.code ?? `http_${res.status}`,
    error?.message ?? (text || res.statusText),
    body,
  );
}

export async function api<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { ...authHeaders(options.token), ...options.headers };
  let body: BodyInit | undefined;
  if (options.json !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(options.json);
  } else if (options.form) {
    body = options.form;
  }
  const res = await fetch(path, {
    method: options.method ?? (body ? "POST" : "GET"),
    headers,
    body,
  });
  if (!res.ok) throw await readError(res);
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

/** A query string from the fields that have a value. */
export function query(fields: Record<string, string | number | undefined | null>): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(fields))
    if (v !== undefined && v !== null && v !== "") params.set(k, String(v));
  const s = params.toString();
  return s ? `?${s}` : "";
}

export const newIdempotencyKey = () => crypto.randomUUID();
