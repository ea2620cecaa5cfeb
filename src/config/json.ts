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
