/** The shapes of the public API's answers the app reads (see /openapi.json). */

export type Network = "test" | "live";
export type MediaType = "image" | "video";
export type Status = "pending" | "processing" | "completed" | "failed";

export interface CatalogModel {
  id: string;
  name: string;
  type: MediaType;
  aliases: string[];
  capabilities: {
    resolutions: string[];
    aspectRatios: string[];
    durations?: number[];
    fps?: { options: number[]; default: number };
  };
  limits: { maxPromptLength: number; maxReferenceImages: number };
  pricing: {
    unit: "credits";
    range: { min: number; max: number };
    table: { resolution: string; duration?: number; credits: number }[];
  };
}

export interface Balance {
  creditBalance: number;
  heldCredits: number;
  earnings: number;
  membershipTier: "free" | "creator" | "pro";
  network: Network;
}

export interface LedgerEntry {
  id: string;
  kind: string;
  account: "credits" | "earnings";
  amount: number;
  balanceAfter: number;
  reference: string | null;
  holdId: string | null;
  metadata: Record<string, unknown>;
  createdAt: string;
}

export interface Payment {
  id: string;
  network: Network;
  payer: string;
  payTo: string;
  amountUsdc: string;
  credits: number;
  purpose: string;
  pack?: string | null;
  status: string;
  transaction: string | null;
  createdAt: string;
}

export interface Page<T> {
  data: T[];
  nextCursor: string | null;
}

export interface ApiKey {
  id: string;
  name: string;
  network: Network;
  prefix: string;
  last4: string;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
  /** Spend limits in whole credits; null: none. */
  limits: { total: number | null; perDay: number | null };
  /** Credits spent against them: settled charges plus open holds, in all and today (UTC). */
  spent: { total: number; today: number };
  key?: string;
}

export interface Routing {
  upstream: string | null;
  failover: boolean;
  attempts: { channel: string; outcome: string; ms: number }[];
}

export interface GenerationResult {
  model: string;
  status: Status;
  progress: number | null;
  imageUrl?: string | null;
  videoUrl?: string | null;
  fps?: number | null;
  cost: number;
  charged: number;
  refunded: number;
  routing: Routing | null;
  error: { code: string; message: string | null } | null;
  finishedAt: string | null;
}

export interface QuoteBreakdown {
  models: { model: string; credits: number }[];
  passFees: { passId: string; fee: number; uses: number; credits: number }[];
  total: number;
}

export interface Generation {
  generationId: string;
  status: Status;
  mediaType: MediaType;
  prompt: string;
  createdAt: string;
  stylePassIds: string[];
  templateId: string | null;
  cost: { quoted: number; charged: number; refunded: number };
  quote: QuoteBreakdown;
  results: GenerationResult[];
}

export interface QuoteAnswer {
  network: Network;
  prompt: string;
  negativePrompt: string | null;
  aspectRatio: string;
  resolution: string;
  quote: QuoteBreakdown;
}

export interface StylePass {
  id: string;
  creatorId: string;
  network: Network;
  name: string;
  description: string;
  stylePrompt: string;
  negativePrompt: string | null;
  tags: string[];
  mediaType: MediaType;
  fee: number;
  previewImageIds: string[];
  previewImageUrls: string[];
  visibility: "public" | "unlisted";
  uses: number;
  status: "active" | "archived";
  createdAt: string;
}

export interface Account {
  id: string;
  walletAddress: string | null;
}

export interface Upload {
  id: string;
  url: string;
  contentType: string;
  bytes: number;
  width: number;
  height: number;
}

export interface TemplateVariable {
  default?: string;
  maxLength: number;
  allowed?: string[];
}

export interface Template {
  id: string;
  creatorId: string;
  network: Network;
  name: string;
  description: string;
  text: string;
  variables: Record<string, TemplateVariable>;
  visibility: "public" | "unlisted";
  createdAt: string;
}

export interface WorkflowStep {
  id: string;
  request: { prompt?: string; models: string[] };
  referenceSteps?: { step: string; model?: string }[];
}

export interface Workflow {
  id: string;
  name: string;
  steps: WorkflowStep[];
  cost: number | null;
  createdAt: string;
}

export interface Reservation {
  reservationId: string;
  status: "active" | "settled" | "expired";
  reservedCredits: number;
  availableCredits: number;
}

export interface WorkflowRun {
  runId: string;
  workflowId: string;
  status: "running" | "completed" | "failed";
  reservation: Reservation;
  cost: { quoted: number; charged: number; refunded: number };
  steps: {
    id: string;
    status: "waiting" | "running" | "completed" | "failed" | "skipped";
    cost: number;
    generationId: string | null;
    generation: Generation | null;
    error: { code: string; message: string | null } | null;
  }[];
}

/** A text or audio model as GET /v1/models lists it: billed by usage, priced per unit. */
export interface UsageModel {
  id: string;
  name: string;
  type: "text" | "audio";
  /** Audio only: speech, transcription, music or sound_effect. */
  kind?: string;
  pricing: {
    unit: "credits";
    /** "1M tokens", "1M characters", "minute", "second" or "clip". */
    per: string;
    /** Text: credits per million prompt and reply tokens. */
    input?: number;
    output?: number;
    /** Audio: credits per `per`. */
    credits?: number;
  };
}
