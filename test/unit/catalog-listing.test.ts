import { describe, expect, it } from "vitest";
import { audioModels } from "../../src/domains/catalog/audio-models.js";
import { catalogContracts, catalogModel } from "../../src/domains/catalog/contract.js";
import { catalog, priceTable } from "../../src/domains/catalog/models.js";
import { catalogJson } from "../../src/domains/catalog/routes.js";
import { textModels } from "../../src/domains/catalog/text-models.js";
import { UNITS_PER_CREDIT } from "../../src/lib/credits.js";

const listed = catalogJson().data;
const byId = new Map(listed.map((m) => [m.id, m]));
/** Units as credits, by decimal arithmetic on the integer (not creditsToJson, the code under test). */
const credits = (units: bigint) =>
  Number(`${units / UNITS_PER_CREDIT}.${(units % UNITS_PER_CREDIT).toString().padStart(4, "0")}`);

describe("GET /v1/models' catalog", () => {
  it("lists 50 or more models, of four types, each id once", () => {
    expect(listed.length).toBeGreaterThanOrEqual(50);
    expect(listed).toHaveLength(catalog.length + textModels.length + audioModels.length);
    expect(new Set(listed.map((m) => m.type))).toEqual(
      new Set(["image", "video", "text", "audio"]),
    );
    expect(new Set(listed.map((m) => m.id)).size).toBe(listed.length);
  });

  it("matches its contract, each entry and the whole answer", () => {
    for (const model of listed) expect(() => catalogModel.parse(model), model.id).not.toThrow();
    expect(() =>
      catalogContracts.listModels.responses[200].schema.parse({ data: listed }),
    ).not.toThrow();
  });

  it("lists every text model at its table price per million tokens, in credits", () => {
    for (const model of textModels) {
      expect(byId.get(model.id), model.id).toEqual({
        id: model.id,
        name: model.name,
        type: "text",
        aliases: [],
        capabilities: { imageInput: model.imageInput },
        limits: { contextLength: model.contextLength, maxOutputTokens: model.maxOutputTokens },
        pricing: {
          unit: "credits",
          per: "1M tokens",
          input: credits(model.price.input),
          output: credits(model.price.output),
        },
      });
    }
    // $5 / $30 market, 70%: 3,500,000 and 21,000,000 units = 350 and 2,100 credits.
    expect(byId.get("gpt-5.5")?.pricing).toMatchObject({ input: 350, output: 2_100 });
  });

  it("lists every audio model with its kind and its table price per unit, in credits", () => {
    for (const model of audioModels) {
      const entry = byId.get(model.id);
      expect(entry, model.id).toMatchObject({ type: "audio", kind: model.kind });
      const { pricing } = entry as { pricing: { per: string; credits: number } };
      switch (model.kind) {
        case "speech":
          expect(pricing).toEqual({
            unit: "credits",
            per: "1M characters",
            credits: credits(model.price.perMillionCharacters),
          });
          expect(entry?.capabilities).toEqual({ voices: model.voices, formats: model.formats });
          break;
        case "transcription":
          expect(pricing).toEqual({
            unit: "credits",
            per: "minute",
            credits: credits(model.price.perMinute),
          });
          break;
        default:
          expect(pricing).toEqual({
            unit: "credits",
            per: model.price.per,
            credits: credits(model.price.units),
          });
          expect(entry?.capabilities).toEqual({ durations: model.durations });
      }
    }
    expect(byId.get("tts-1")?.pricing).toMatchObject({ per: "1M characters", credits: 1_050 });
    expect(byId.get("whisper-1")?.pricing).toMatchObject({ per: "minute", credits: 0.42 });
    expect(byId.get("stable-audio-2.5")?.pricing).toMatchObject({ per: "clip", credits: 14 });
  });

  it("keeps image and video entries as they were", () => {
    const media = listed.slice(0, catalog.length);
    expect(media.map((m) => m.id)).toEqual(catalog.map((m) => m.id));
    for (const model of catalog) {
      const entry = byId.get(model.id) as Record<string, unknown>;
      expect(Object.keys(entry)).toEqual([
        "id",
        "name",
        "type",
        "aliases",
        "capabilities",
        "limits",
        "pricing",
      ]);
      expect(entry.pricing).toEqual({
        unit: "credits",
        range: { min: model.range[0], max: model.range[1] },
        table: priceTable(model),
      });
    }
    expect(byId.get("gpt-image-2")?.pricing).toMatchObject({
      table: [
        { resolution: "0.5K", credits: 2 },
        { resolution: "1K", credits: 3 },
        { resolution: "2K", credits: 4 },
        { resolution: "4K", credits: 6 },
      ],
    });
  });
});
