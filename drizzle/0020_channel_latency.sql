CREATE TABLE IF NOT EXISTS "channel_latency" (
	"channel_id" text NOT NULL,
	"model" text NOT NULL,
	"latency_ms" double precision NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "channel_latency_channel_id_model_pk" PRIMARY KEY("channel_id","model")
);
