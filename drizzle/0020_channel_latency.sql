CREATE TABLE IF NOT EXISTS "channel_latency" (
	"channel_id" text PRIMARY KEY NOT NULL,
	"latency_ms" double precision NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
