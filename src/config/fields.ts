// Reading the keys of one JSON object against a list of known keys. Whereabouts decodes with Go's
// encoding/json, which matches keys case-insensitively (an exact match first) and treats null as absent;
// NADs in the wild rely on both, so we do the same — but an unknown key or two spellings of one key are
// errors here, where Go silently ignored or overwrote them.

import { CniCode, fail, ipamError, ok, type Result } from '../errors.ts';
import { describeType, isObject, quoteText } from './json.ts';

/** Key names whose values are never repeated in an error: they may hold credentials. */
const secretLike = /pass|secret|token|credential|auth|key$/i;

export type FieldKind = 'string' | 'boolean' | 'integer' | 'strings' | 'object' | 'array';
export type Schema = Readonly<Record<string, FieldKind>>;

/** Known keys of one object, by their canonical name; absent and null keys are left out. */
export type Fields = ReadonlyMap<string, unknown>;

/** Where the object came from, for messages: `ipam`, `ipam.ipRanges[1]`, `flat file /etc/...`. */
export type Origin = {
  readonly where: string;
  /** Values of unknown keys are quoted in errors only when the text came from the NAD itself, not a file. */
  readonly quoteValues: boolean;
};

const kindMatches = (kind: FieldKind, value: unknown): boolean => {
  switch (kind) {
    case 'string':
      return typeof value === 'string';
    case 'boolean':
      return typeof value === 'boolean';
    case 'integer':
      return typeof value === 'number' && Number.isSafeInteger(value);
    case 'strings':
      return Array.isArray(value) && value.every((v) => typeof v === 'string');
    case 'object':
      return isObject(value);
    case 'array':
      return Array.isArray(value);
  }
};

const kindNames: Record<FieldKind, string> = {
  string: 'a string',
  boolean: 'true or false',
  integer: 'an integer',
  strings: 'a list of strings',
  object: 'an object',
  array: 'a list',
};

/** Levenshtein distance, for "did you mean" on a mistyped key. */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] as number;
}

const suggestion = (key: string, schema: Schema): string => {
  if (key.length > 64) return '';
  const close = Object.keys(schema)
    .map((known) => ({ known, d: distance(key.toLowerCase(), known.toLowerCase()) }))
    .filter(({ d }) => d <= 2)
    .sort((x, y) => x.d - y.d)[0];
  return close === undefined ? '' : ` (did you mean "${close.known}"?)`;
};

const quote = (value: unknown): string => {
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
};

export function readFields(value: unknown, schema: Schema, origin: Origin): Result<Fields> {
  if (!isObject(value)) {
    return fail(
      ipamError(CniCode.InvalidConfig, `${origin.where} must be an object, got ${describeType(value)}`),
    );
  }
  const lowerCase = new Map(Object.keys(schema).map((k) => [k.toLowerCase(), k]));
  const fields = new Map<string, unknown>();
  const spelledAs = new Map<string, string>();
  for (const [key, raw] of Object.entries(value)) {
    const canonical = key in schema ? key : lowerCase.get(key.toLowerCase());
    if (canonical === undefined) {
      // The value helps find a typo, unless the key's name says it may be a secret.
      const shown = origin.quoteValues && !secretLike.test(key) ? ` with value ${quote(raw)}` : '';
      return fail(
        ipamError(
          CniCode.UnsupportedField,
          `unknown key ${quoteText(key)}${shown} in ${origin.where}${suggestion(key, schema)}`,
        ),
      );
    }
    const earlier = spelledAs.get(canonical);
    if (earlier !== undefined) {
      return fail(
        ipamError(
          CniCode.InvalidConfig,
          `${origin.where} sets "${canonical}" twice, as ${quoteText(earlier)} and as ${quoteText(key)}`,
        ),
      );
    }
    spelledAs.set(canonical, key);
    if (raw === null) continue;
    const kind = schema[canonical] as FieldKind;
    if (!kindMatches(kind, raw)) {
      return fail(
        ipamError(
          CniCode.InvalidConfig,
          `${origin.where}.${canonical} must be ${kindNames[kind]}, got ${describeType(raw)}`,
        ),
      );
    }
    fields.set(canonical, raw);
  }
  return ok(fields);
}

export const stringField = (fields: Fields, key: string): string | undefined =>
  fields.get(key) as string | undefined;
export const stringsField = (fields: Fields, key: string): readonly string[] =>
  (fields.get(key) as string[] | undefined) ?? [];
