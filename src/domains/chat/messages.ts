import { z } from "zod";

/**
 * Chat messages in OpenAI's chat-completions shape (issue 20, item 2): system, user and
 * assistant turns whose content is a string or a list of parts; user turns may carry images.
 * Parsed with these schemas wherever messages come in, so adapters see one known shape.
 */

export const textPart = z.object({ type: z.literal("text"), text: z.string() });
export const imagePart = z.object({
  type: z.literal("image_url"),
  image_url: z.object({
    url: z.string().min(1),
    detail: z.enum(["auto", "low", "high"]).optional(),
  }),
});

const name = z.string().min(1).max(64).optional();

export const chatMessage = z.discriminatedUnion("role", [
  z.object({ role: z.literal("system"), content: z.union([z.string(), z.array(textPart)]), name }),
  z.object({
    role: z.literal("user"),
    content: z.union([z.string(), z.array(z.discriminatedUnion("type", [textPart, imagePart]))]),
    name,
  }),
  z.object({
    role: z.literal("assistant"),
    content: z.union([z.string(), z.array(textPart), z.null()]),
    name,
  }),
]);

export type TextPart = z.infer<typeof textPart>;
export type ImagePart = z.infer<typeof imagePart>;
export type ChatMessage = z.infer<typeof chatMessage>;

/** A message's content as parts, a plain string being one text part. */
export function partsOf(message: ChatMessage): Array<TextPart | ImagePart> {
  if (message.content === null) return [];
  return typeof message.content === "string"
    ? [{ type: "text", text: message.content }]
    : message.content;
}

/** The text of a message's parts, joined, without its images. */
export const textOf = (message: ChatMessage): string =>
  partsOf(message)
    .map((p) => (p.type === "text" ? p.text : ""))
    .join("");

/** Whether any message carries an image part (a model without image input refuses those). */
export const hasImages = (messages: readonly ChatMessage[]): boolean =>
  messages.some((m) => partsOf(m).some((p) => p.type === "image_url"));
