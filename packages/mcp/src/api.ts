/**
 * What the MCP tools need of Polyforge: the HTTP API's operations and shapes. This package
 * implements it over HTTP (http-api.ts); the API's own /mcp endpoint implements it with its
 * services in process. Nothing here imports anything but types, so the API can load the tools
 * from source.
 */

type Json = Record<string, unknown>;

/** A result of a generation as GET /v1/generate/status shows it. */
export interface ResultJson {
  model: string;
  status: string;
  imageUrl?: string | null;
  videoUrl?: string | null;
  audioUrl?: string | null;
  /** When the output was deleted after the retention period (JSON text over HTTP, a Date in process). */
  expiredAt?: string | Date | null;
  fps?: number | null;
  progress?: number | null;
  cost: number;
  routing?: unknown;
  error?: unknown;
}

/** A generation as GET /v1/generate/status shows it. */
export interface GenerationJson {
  generationId: string;
  status: "pending" | "processing" | "completed" | "failed";
  cost: { quoted: number; charged: number; refunded: number };
  results: ResultJson[];
}

/** A model as GET /v1/models lists it (the tools read these few fields). */
export interface ModelJson {
  id: string;
  type: string;
  aliases?: readonly string[];
  kind?: string;
  capabilities?: { voices?: readonly string[]; [field: string]: unknown };
  [field: string]: unknown;
}

/** What a wallet paid for one call: the API's receipt, with the USDC amount signed. */
export interface PaymentJson {
  usdc: string;
  [field: string]: unknown;
}

export interface ChatCompletionJson {
  model: string;
  choices: Array<{ message: { content: string | null }; finish_reason: string | null }>;
  usage: { prompt_tokens: number; completion_tokens: number };
  cost: { quoted: number; charged: number; refunded: number };
  routing: object;
  payment?: Json;
}

export interface SpeechJson {
  audioBase64: string;
  contentType: string;
  /** Credits. */
  charged: number;
  upstream: string | null;
  failover: boolean;
}

/** An API refusal (or a refusal of ours, such as a spending cap), with a stable code. */
export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export interface PolyforgeApi {
  /** How calls are paid: with an API key's credits (the default), or each by a wallet. */
  mode?: "key" | "wallet";
  /**
   * POST /v1/generate. With `wait`, the caller is about to wait for the results: an API that
   * runs them itself (the one in process) may say so with `running`, which ends when they
   * have settled.
   */
  generate(
    body: Json,
    options?: { wait?: boolean },
  ): Promise<{
    generationId: string;
    cost: number;
    payment?: PaymentJson;
    running?: Promise<void>;
  }>;
  /** GET /v1/generate/status: the generations found, keyed by id; the other ids in notFound. */
  status(
    ids: string[],
  ): Promise<{ generations: Record<string, GenerationJson>; notFound: string[] }>;
  models(): Promise<ModelJson[]>;
  /** POST /v1/audio/speech: the audio (base64), what it was charged and who served it. */
  speech(body: Json, signal?: AbortSignal): Promise<SpeechJson & { payment?: PaymentJson }>;
  /** POST /v1/chat/completions, plain: the whole reply with its usage, cost and routing. */
  chat(body: Json, signal?: AbortSignal): Promise<ChatCompletionJson>;
  balance(): Promise<Json>;
  /** With a wallet: what this process has paid today (UTC) and the caps, in USDC base units. */
  spending?: () => { day: string; spent: bigint; maxPerCall: bigint; maxPerDay: bigint };
  /**
   * Aborts when the process serving these calls begins to shut down (a deploy): a tool that
   * waits answers with what it has then, and the work goes on.
   */
  stopping?: AbortSignal;
}
