/**
 * The README's shell examples as data, and the pseudo-JSON its example answers are written in,
 * so a test can run each example and check what it documents.
 *
 * An answer is written as JSON where `…` stands for what varies: a whole value (`"routing":{…}`),
 * the rest of an object or array (`…` as a member or element), or part of a string
 * (`"gen_…"`). A documented object names the fields checked (others may be there); a documented
 * array without `…` has exactly those elements.
 */

export interface ReadmeCommand {
  /** 1-based line of the README where the command starts. */
  line: number;
  /** The `## ` section it is in. */
  section: string;
  /** The command as printed (continuation lines included). */
  text: string;
  /** The `# ` comment lines after it: the documented answer, if any. */
  documented: string | undefined;
}

export interface ReadmeBlock {
  line: number;
  section: string;
  /** Why the test does not run this block, from a `<!-- not run by the README test: … -->`. */
  notRun: string | undefined;
  commands: ReadmeCommand[];
}

const FENCE = /^(\s*)```(\w*)\s*$/;
const NOT_RUN = /<!--\s*not run by the README test:\s*(.*?)\s*-->/;

interface Fenced {
  line: number;
  section: string;
  language: string;
  notRun: string | undefined;
  /** Its lines, each with its 1-based line number, less the fence's indent. */
  body: { n: number; text: string }[];
}

/** Every fenced block of the README, in order. */
function fencedBlocks(markdown: string): Fenced[] {
  const lines = markdown.split("\n");
  const fenced: Fenced[] = [];
  let section = "";
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line.startsWith("## ")) section = line.slice(3).trim();
    const fence = FENCE.exec(line);
    if (!fence) continue;
    const indent = (fence[1] as string).length;
    const body: { n: number; text: string }[] = [];
    let j = i + 1;
    for (; j < lines.length && !FENCE.test(lines[j] as string); j++)
      body.push({ n: j + 1, text: (lines[j] as string).slice(indent) });
    const before = lines.slice(Math.max(0, i - 3), i).join("\n");
    fenced.push({
      line: i + 1,
      section,
      language: fence[2] as string,
      notRun: NOT_RUN.exec(before)?.[1],
      body,
    });
    i = j;
  }
  return fenced;
}

/** Every ```sh block of the README with its commands and their documented answers. */
export function readmeBlocks(markdown: string): ReadmeBlock[] {
  return fencedBlocks(markdown)
    .filter((b) => b.language === "sh")
    .map(({ line, section, notRun, body }) => ({
      line,
      section,
      notRun,
      commands: commandsOf(body, section),
    }));
}

export interface ReadmeScript {
  line: number;
  section: string;
  /** Why the test does not run this block, from a `<!-- not run by the README test: … -->`. */
  notRun: string | undefined;
  /** The TypeScript as printed. */
  code: string;
  /** The `// → ` lines: what it prints, in order, written like a documented answer's strings. */
  documented: string[];
}

/** Every ```ts block of the README: a script to run, with what it documents it prints. */
export function readmeScripts(markdown: string): ReadmeScript[] {
  return fencedBlocks(markdown)
    .filter((b) => b.language === "ts")
    .map(({ line, section, notRun, body }) => ({
      line,
      section,
      notRun,
      code: body.map((l) => l.text).join("\n"),
      documented: body
        .map((l) => l.text.trimStart())
        .filter((l) => l.startsWith("// → "))
        .map((l) => l.slice("// → ".length)),
    }));
}

function commandsOf(body: { n: number; text: string }[], section: string): ReadmeCommand[] {
  const commands: ReadmeCommand[] = [];
  for (let k = 0; k < body.length; k++) {
    const { n, text } = body[k] as { n: number; text: string };
    if (!text.trim() || text.trimStart().startsWith("#")) continue;
    let command = text;
    // A command goes on past a trailing backslash or an unclosed single quote.
    while ((command.endsWith("\\") || openQuote(command)) && k + 1 < body.length) {
      k++;
      command += `\n${(body[k] as { text: string }).text}`;
    }
    const documented: string[] = [];
    while (k + 1 < body.length && (body[k + 1] as { text: string }).text.startsWith("#")) {
      k++;
      documented.push((body[k] as { text: string }).text.replace(/^#\s?/, ""));
    }
    commands.push({
      line: n,
      section,
      text: command,
      documented: documented.length ? documented.join("\n") : undefined,
    });
  }
  return commands;
}

const openQuote = (s: string) => (s.match(/'/g)?.length ?? 0) % 2 === 1;

/** A documented value: a JSON value in which ELLIPSIS stands for what varies. */
export type Documented =
  | { kind: "any" }
  | { kind: "literal"; value: string | number | boolean | null }
  | { kind: "pattern"; source: string; pattern: RegExp }
  | { kind: "object"; members: [Documented, Documented][] }
  | { kind: "array"; items: Documented[]; more: boolean };

/**
 * Parses a documented answer: an optional HTTP status, then one pseudo-JSON value, then
 * anything (a remark such as `<- shown only now`).
 */
export function parseDocumented(text: string): { status: number | undefined; value: Documented } {
  const status = /^\s*(\d{3})\s+(?=[{[])/.exec(text);
  const parser = new Parser(status ? text.slice(status[0].length) : text);
  return { status: status ? Number(status[1]) : undefined, value: parser.value() };
}

class Parser {
  private i = 0;
  constructor(private readonly s: string) {}

  value(): Documented {
    this.space();
    const c = this.s[this.i];
    if (c === "{") return this.object();
    if (c === "[") return this.array();
    if (c === '"') return this.string();
    if (c === "…") {
      this.i++;
      return { kind: "any" };
    }
    const literal = /^(-?\d+(\.\d+)?|true|false|null)/.exec(this.s.slice(this.i));
    if (!literal)
      throw new Error(`cannot read the documented answer at: ${this.s.slice(this.i, this.i + 40)}`);
    this.i += (literal[0] as string).length;
    return { kind: "literal", value: JSON.parse(literal[0] as string) };
  }

  private object(): Documented {
    const members: [Documented, Documented][] = [];
    this.i++;
    for (;;) {
      this.space();
      if (this.s[this.i] === "}") break;
      if (this.s[this.i] === "…") this.i++;
      else {
        // A key may vary too (`"gen_…":{…}` in an object keyed by id).
        const key = this.string();
        this.space();
        this.expect(":");
        members.push([key, this.value()]);
      }
      this.space();
      if (this.s[this.i] === ",") this.i++;
    }
    this.i++;
    return { kind: "object", members };
  }

  private array(): Documented {
    const items: Documented[] = [];
    let more = false;
    this.i++;
    for (;;) {
      this.space();
      if (this.s[this.i] === "]") break;
      if (this.s[this.i] === "…" && /^…\s*[,\]]/.test(this.s.slice(this.i))) {
        this.i++;
        more = true;
      } else items.push(this.value());
      this.space();
      if (this.s[this.i] === ",") this.i++;
    }
    this.i++;
    return { kind: "array", items, more };
  }

  private string(): Documented {
    const m = /^"((?:[^"\\]|\\.)*)"/.exec(this.s.slice(this.i));
    if (!m) throw new Error(`expected a string at: ${this.s.slice(this.i, this.i + 40)}`);
    this.i += (m[0] as string).length;
    const text = JSON.parse(m[0] as string) as string;
    if (!text.includes("…")) return { kind: "literal", value: text };
    const source = text
      .split("…")
      .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
      .join("[\\s\\S]*");
    return { kind: "pattern", source: text, pattern: new RegExp(`^${source}$`) };
  }

  private expect(c: string) {
    if (this.s[this.i] !== c)
      throw new Error(`expected ${c} at: ${this.s.slice(this.i, this.i + 40)}`);
    this.i++;
  }

  private space() {
    while (/\s/.test(this.s[this.i] ?? "")) this.i++;
  }
}

/** Where `actual` differs from what is documented, as "path: why" lines (none when it matches). */
export function mismatches(documented: Documented, actual: unknown, path = "$"): string[] {
  switch (documented.kind) {
    case "any":
      return [];
    case "literal":
      return actual === documented.value
        ? []
        : [
            `${path}: documented ${JSON.stringify(documented.value)}, got ${JSON.stringify(actual)}`,
          ];
    case "pattern":
      return typeof actual === "string" && documented.pattern.test(actual)
        ? []
        : [`${path}: documented "${documented.source}", got ${JSON.stringify(actual)}`];
    case "object": {
      if (!actual || typeof actual !== "object" || Array.isArray(actual))
        return [`${path}: documented an object, got ${JSON.stringify(actual)}`];
      const record = actual as Record<string, unknown>;
      const keys = Object.keys(record);
      return documented.members.flatMap(([key, value]) => {
        // A varying key stands for the first key it matches.
        const name =
          key.kind === "pattern" ? key.source : String((key as { value: unknown }).value);
        const found =
          key.kind === "pattern"
            ? keys.find((k) => key.pattern.test(k))
            : keys.find((k) => k === name);
        return found === undefined
          ? [`${path}.${name}: missing`]
          : mismatches(value, record[found], `${path}.${found}`);
      });
    }
    case "array": {
      if (!Array.isArray(actual))
        return [`${path}: documented an array, got ${JSON.stringify(actual)}`];
      const lengthOk = documented.more
        ? actual.length >= documented.items.length
        : actual.length === documented.items.length;
      if (!lengthOk)
        return [
          `${path}: documented ${documented.items.length}${documented.more ? " or more" : ""} items, got ${actual.length}`,
        ];
      return documented.items.flatMap((item, i) => mismatches(item, actual[i], `${path}[${i}]`));
    }
  }
}
