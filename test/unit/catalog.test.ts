import { describe, expect, it } from "vitest";
import { catalog, findModel, priceOf, priceTable } from "../../src/domains/catalog/models.js";

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
});
