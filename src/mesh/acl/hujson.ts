// A reader for HuJSON ("human JSON"): JSON plus `//` and `/* */` comments and trailing commas
// after the last element of an array or object. Used for files people write by hand (the ACL
// policy). It records the line where each object and array starts and where each object key
// sits, so errors can name lines. Duplicate keys in an object are an error (JSON.parse would keep
// the last one silently). Syntax errors throw HujsonSyntaxError with a line and column.

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export interface JsonObject { [key: string]: JsonValue }

/** Thrown when the text is not HuJSON; `line` and `column` are 1-based. */
export class HujsonSyntaxError extends Error {
  override name = 'HujsonSyntaxError';
  constructor(readonly line: number, readonly column: number, readonly what: string) {
    super(`line ${line} column ${column}: ${what}`);
  }
}

/** A parsed document and where its parts were. */
export class HujsonDocument {
  /** Line (1-based) where each object or array starts. */
  private readonly starts = new WeakMap<object, number>();
  /** Line of each key of each object. */
  private readonly keys = new WeakMap<object, Map<string, number>>();
  value: JsonValue = null;

  /** @internal */ markStart(v: object, line: number): void { this.starts.set(v, line); }
  /** @internal */ markKey(obj: object, key: string, line: number): void {
    let m = this.keys.get(obj);
    if (!m) this.keys.set(obj, (m = new Map()));
    m.set(key, line);
  }

  /** The line where `v` (an object or array of this document) starts, or 0. */
  lineOf(v: unknown): number {
    return v !== null && typeof v === 'object' ? this.starts.get(v) ?? 0 : 0;
  }

  /** The line of `key` in `obj`, else the line where `obj` starts. */
  lineOfKey(obj: unknown, key: string): number {
    if (obj === null || typeof obj !== 'object') return 0;
    return this.keys.get(obj)?.get(key) ?? this.lineOf(obj);
  }
}

const MAX_DEPTH = 64;
const NUMBER_RE = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

/** Parses HuJSON text. Throws HujsonSyntaxError. */
export function parseHujson(text: string): HujsonDocument {
  const doc = new HujsonDocument();
  let pos = 0;

  // Lines are counted forward from the last position asked about (positions mostly increase).
  let countedTo = 0;
  let countedLine = 1;
  const lineAt = (at: number): number => {
    if (at < countedTo) { countedTo = 0; countedLine = 1; }
    for (; countedTo < at && countedTo < text.length; countedTo++) if (text.charCodeAt(countedTo) === 10) countedLine++;
    return countedLine;
  };
  const fail = (what: string, at = pos): never => {
    const line = lineAt(at);
    const column = at - text.lastIndexOf('\n', at - 1);
    throw new HujsonSyntaxError(line, column, what);
  };
  const describe = (): string => (pos >= text.length ? 'the end of the file' : JSON.stringify(text[pos]));

  const skip = (): void => {
    while (pos < text.length) {
      const c = text[pos]!;
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\ufeff') { pos++; continue; }
      if (c === '/' && text[pos + 1] === '/') {
        const nl = text.indexOf('\n', pos);
        pos = nl < 0 ? text.length : nl + 1;
        continue;
      }
      if (c === '/' && text[pos + 1] === '*') {
        const close = text.indexOf('*/', pos + 2);
        if (close < 0) fail('a /* comment is never closed');
        pos = close + 2;
        continue;
      }
      return;
    }
  };

  const readString = (): string => {
    const start = pos;
    pos++; // opening quote
    while (pos < text.length) {
      const c = text.charCodeAt(pos);
      if (c === 0x22) {
        pos++;
        try {
          return JSON.parse(text.slice(start, pos)) as string;
        } catch {
          return fail('a string has a bad escape sequence', start);
        }
      }
      if (c === 0x5c) pos += 2;
      else if (c === 10) fail('a string runs to the end of the line (missing closing quote?)', start);
      else pos++;
    }
    return fail('a string is never closed', start);
  };

  const readValue = (depth: number): JsonValue => {
    skip();
    if (depth > MAX_DEPTH) fail(`nested deeper than ${MAX_DEPTH} levels`);
    const c = text[pos];
    if (c === '{') return readObject(depth);
    if (c === '[') return readArray(depth);
    if (c === '"') return readString();
    if (c === "'") fail('strings take double quotes (")');
    for (const [word, v] of [['true', true], ['false', false], ['null', null]] as const) {
      if (text.startsWith(word, pos)) { pos += word.length; return v; }
    }
    NUMBER_RE.lastIndex = pos;
    const m = NUMBER_RE.exec(text);
    if (m) { pos += m[0].length; return Number(m[0]); }
    return fail(`expected a value, found ${describe()}`);
  };

  const readArray = (depth: number): JsonValue[] => {
    const arr: JsonValue[] = [];
    doc.markStart(arr, lineAt(pos));
    pos++;
    for (;;) {
      skip();
      if (text[pos] === ']') { pos++; return arr; }
      arr.push(readValue(depth + 1));
      skip();
      if (text[pos] === ',') { pos++; continue; }
      if (text[pos] === ']') { pos++; return arr; }
      fail(`expected ',' or ']' in a list, found ${describe()}`);
    }
  };

  const readObject = (depth: number): JsonObject => {
    const obj: JsonObject = Object.create(null) as JsonObject;
    doc.markStart(obj, lineAt(pos));
    pos++;
    for (;;) {
      skip();
      if (text[pos] === '}') { pos++; return obj; }
      if (text[pos] !== '"') fail(`expected a "quoted" key or '}', found ${describe()}`);
      const keyAt = pos;
      const key = readString();
      if (Object.prototype.hasOwnProperty.call(obj, key)) fail(`key ${JSON.stringify(key)} appears twice in the same object`, keyAt);
      skip();
      if (text[pos] !== ':') fail(`expected ':' after key ${JSON.stringify(key)}, found ${describe()}`);
      pos++;
      doc.markKey(obj, key, lineAt(keyAt));
      obj[key] = readValue(depth + 1);
      skip();
      if (text[pos] === ',') { pos++; continue; }
      if (text[pos] === '}') { pos++; return obj; }
      fail(`expected ',' or '}' in an object, found ${describe()}`);
    }
  };

  doc.value = readValue(0);
  skip();
  if (pos < text.length) fail(`unexpected ${describe()} after the end of the document`);
  return doc;
}
