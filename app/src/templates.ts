/** A template's {{variables}}, in order of first appearance. */
export function variablesIn(text: string): string[] {
  return [
    ...new Set(
      [...text.matchAll(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g)].map((m) => m[1] ?? ""),
    ),
  ];
}

/**
 * The text with each variable filled in, for a preview while editing; the API composes the
 * prompt a generation really runs with (its quote shows it).
 */
export function fillIn(text: string, values: Record<string, string | undefined>): string {
  return text.replace(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g, (whole, name: string) => {
    const value = values[name];
    return value ? value : whole;
  });
}
