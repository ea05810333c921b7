import { describe, expect, it } from "vitest";
import {
  catalog,
  findModel,
  MAX_PROMPT_LENGTH,
  priceOf,
  priceTable,
} from "../../src/domains/catalog/models.js";

describe("catalog", () => {
  it("carries the 28 launch models: 12 image, 16 video", () => {
    expect(catalog).toHaveLength(28);
    expect(catalog.filter((m) => m.type === "image")).toHaveLength(12);
    expect(catalog.filter((m) => m.type === "video")).toHaveLength(16);
    expect(new Set(catalog.map((m) => m.id)).size).toBe(28);
  });

  it("reproduces the published examples", () => {
    const gpt = findModel("gpt-image-2");
    const pro = findModel("gemini-3-pro-image-preview");
    expect(gpt && priceOf(gpt, { resolution: "2K" })).toBe(4);
    expect(pro && priceOf(pro, { resolution: "2K" })).toBe(12);
  });

  it("keeps every price inside its published range, and prices every option it offers", () => {
    for (const model of catalog) {
      const table = priceTable(model);
      expect(table.length, model.id).toBe(
        model.resolutions.length * (model.type === "video" ? model.durations.length : 1),
      );
      for (const row of table) {
        expect(row.credits, `${model.id} ${JSON.stringify(row)}`).toBeGreaterThanOrEqual(
          model.range[0],
        );
        expect(row.credits, `${model.id} ${JSON.stringify(row)}`).toBeLessThanOrEqual(
          model.range[1],
        );
      }
      const prices = table.map((r) => r.credits);
      expect(Math.min(...prices), model.id).toBe(model.range[0]);
      expect(Math.max(...prices), model.id).toBe(model.range[1]);
    }
  });

  it("accepts aliases wherever an id is", () => {
    expect(findModel("nano-banana-pro")?.id).toBe("gemini-3-pro-image-preview");
    expect(findModel("nano-banana-2")?.id).toBe("gemini-3.1-flash-image-preview");
    expect(findModel("nano-banana")?.id).toBe("gemini-2.5-flash-image-preview");
    expect(findModel("dall-e-2")).toBeUndefined();
  });

  it("gives every video model its allowed durations and every image model none", () => {
    for (const model of catalog) {
      if (model.type === "video") expect(model.durations.length, model.id).toBeGreaterThan(0);
      else expect(model.durations).toEqual([]);
    }
  });

  it("takes prompts of up to 10,000 characters, less where a model's upstream takes less", () => {
    expect(MAX_PROMPT_LENGTH).toBe(10_000);
    for (const model of catalog) {
      expect(model.maxPromptLength, model.id).toBeGreaterThan(0);
      expect(model.maxPromptLength, model.id).toBeLessThanOrEqual(MAX_PROMPT_LENGTH);
    }
    // GPT Image takes 32,000 characters, so the request-wide limit is its limit.
    expect(findModel("gpt-image-2")?.maxPromptLength).toBe(10_000);
    expect(findModel("kling-v3")?.maxPromptLength).toBe(2_500);
    const lower = catalog.filter((m) => m.maxPromptLength < MAX_PROMPT_LENGTH);
    expect(lower.filter((m) => m.type === "image").length).toBeGreaterThan(0);
    expect(lower.filter((m) => m.type === "video").length).toBeGreaterThan(0);
  });

  it("gives every video model the frame rates it offers and its default among them, and image models none", () => {
    for (const model of catalog) {
      if (model.type === "image") {
        expect(model.fps, model.id).toBeUndefined();
        continue;
      }
      expect(model.fps?.options.length, model.id).toBeGreaterThan(0);
      expect(model.fps?.options, model.id).toContain(model.fps?.default);
      expect(model.fps?.options, model.id).toEqual(
        [...(model.fps?.options ?? [])].sort((a, b) => a - b),
      );
    }
    expect(findModel("kling-v2-6")?.fps).toEqual({ options: [24, 30], default: 24 });
    expect(catalog.some((m) => (m.fps?.options.length ?? 0) > 1)).toBe(true);
  });
});
