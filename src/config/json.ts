import { fail, ok, type Result } from '../errors.ts';

/**
 * JSON.parse whose failure says where, never what: the engine's own messages quote the input, and input
 * here may come from files named by a NAD, which must not leak into errors or logs.
 */
export function parseJson(text: string): Result<unknown, string> {
  try {
    return ok(JSON.parse(text) as unknown);
  } catch (e) {
    const message = e instanceof Error ? e.message : '';
    const position = /^(.*) in JSON at position (\d+)/.exec(message);
    if (position?.[2] !== undefined) {
      const offset = Number(position[2]);
      const before = text.slice(0, offset);
      const line = before.split('\n').length;
      const column = offset - before.lastIndexOf('\n');
      // The engine's grammar hints ("Expected ',' or ']'") name syntax, not input; keep only those.
      const hint = /^(Expected|Unterminated|Unexpected non-whitespace|Bad)/.test(position[1] ?? '')
        ? `: ${position[1]}`
        : '';
      return fail(`invalid JSON at line ${line} column ${column}${hint}`);
    }
    if (message.includes('end of JSON input') || text.trim() === '') return fail('the JSON ends too early');
    return fail('invalid JSON');
  }
}

export const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

export const describeType = (value: unknown): string =>
  value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;

/** Longest text quoted back in an error: input from a runtime or a NAD may be of any length. */
export const maxQuoted = 100;

/**
 * Text from outside (the runtime's environment, a NAD) as an error quotes it: JSON-escaped, so control
 * characters (NUL, newlines) show as escapes, and cut to about `max` characters of that escaped form,
 * with the full length said.
 */
export function quoteText(text: string, max = maxQuoted): string {
  let quoted = JSON.stringify(text);
  if (quoted.length <= max + 2) return quoted;
  let shown = text.slice(0, max);
  for (quoted = JSON.stringify(shown); quoted.length > max + 2; quoted = JSON.stringify(shown))
    shown = shown.slice(0, Math.max(0, shown.length - Math.ceil((quoted.length - max - 2) / 6)));
  return `${quoted.slice(0, -1)}..." (${text.length} characters)`;
}
