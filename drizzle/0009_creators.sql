CREATE TYPE "public"."visibility" AS ENUM('public', 'unlisted');--> statement-breakpoint
CREATE TABLE "generation_passes" (
	"generation_id" text NOT NULL,
	"pass_id" text NOT NULL,
	"position" integer NOT NULL,
	"creator_id" text NOT NULL,
	"fee" bigint NOT NULL,
	CONSTRAINT "generation_passes_generation_id_pass_id_pk" PRIMARY KEY("generation_id","pass_id"),
	CONSTRAINT "generation_passes_fee_non_negative" CHECK ("generation_passes"."fee" >= 0)
);
--> statement-breakpoint
CREATE TABLE "pass_uses" (
	"result_id" text NOT NULL,
	"pass_id" text NOT NULL,
	"network" "network" NOT NULL,
	"creator_id" text NOT NULL,
	"user_id" text NOT NULL,
	"fee" bigint NOT NULL,
	"royalty" bigint NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	CONSTRAINT "pass_uses_result_id_pass_id_pk" PRIMARY KEY("result_id","pass_id"),
	CONSTRAINT "pass_uses_royalty_within_fee" CHECK ("pass_uses"."royalty" >= 0 and "pass_uses"."royalty" <= "pass_uses"."fee")
);
--> statement-breakpoint
CREATE TABLE "style_passes" (
	"id" text PRIMARY KEY NOT NULL,
	"creator_id" text NOT NULL,
	"network" "network" NOT NULL,
	"name" text NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"style_prompt" text NOT NULL,
	"negative_prompt" text,
	"defaults" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"preview_image_ids" text[] DEFAULT '{}' NOT NULL,
	"tags" text[] DEFAULT '{}' NOT NULL,
	"media_type" "media_type" NOT NULL,
	"fee" bigint NOT NULL,
	"visibility" "visibility" DEFAULT 'public' NOT NULL,
	"uses" bigint DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"archived_at" timestamp with time zone,
	CONSTRAINT "style_passes_fee_non_negative" CHECK ("style_passes"."fee" >= 0)
);
--> statement-breakpoint
CREATE TABLE "prompt_templates" (
	"id" text PRIMARY KEY NOT NULL,
	"creator_id" text NOT NULL,
	"network" "network" NOT NULL,
	"name" text NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"text" text NOT NULL,
	"variables" jsonb NOT NULL,
	"visibility" "visibility" DEFAULT 'public' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "prompt_templates_text_length" CHECK (length("prompt_templates"."text") <= 4000)
);
--> statement-breakpoint
ALTER TABLE "generation_passes" ADD CONSTRAINT "generation_passes_generation_id_generations_id_fk" FOREIGN KEY ("generation_id") REFERENCES "public"."generations"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "generation_passes" ADD CONSTRAINT "generation_passes_pass_id_style_passes_id_fk" FOREIGN KEY ("pass_id") REFERENCES "public"."style_passes"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "pass_uses" ADD CONSTRAINT "pass_uses_result_id_generation_results_id_fk" FOREIGN KEY ("result_id") REFERENCES "public"."generation_results"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "pass_uses" ADD CONSTRAINT "pass_uses_pass_id_style_passes_id_fk" FOREIGN KEY ("pass_id") REFERENCES "public"."style_passes"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "style_passes" ADD CONSTRAINT "style_passes_creator_id_accounts_id_fk" FOREIGN KEY ("creator_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "prompt_templates" ADD CONSTRAINT "prompt_templates_creator_id_accounts_id_fk" FOREIGN KEY ("creator_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "pass_uses_pass_created_idx" ON "pass_uses" USING btree ("pass_id","created_at");--> statement-breakpoint
CREATE INDEX "pass_uses_creator_created_idx" ON "pass_uses" USING btree ("creator_id","network","created_at");--> statement-breakpoint
CREATE INDEX "style_passes_listing_idx" ON "style_passes" USING btree ("network","created_at");--> statement-breakpoint
CREATE INDEX "style_passes_creator_idx" ON "style_passes" USING btree ("creator_id","network");--> statement-breakpoint
CREATE INDEX "style_passes_tags_idx" ON "style_passes" USING gin ("tags");--> statement-breakpoint
CREATE INDEX "prompt_templates_listing_idx" ON "prompt_templates" USING btree ("network","created_at");