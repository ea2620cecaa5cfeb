// Label and field selectors with the API server's syntax: `a=b`, `a==b`, `a!=b`, `a in (x,y)`,
// `a notin (x)`, `a`, `!a`, comma-separated and all required.

export type Requirement =
  | { readonly key: string; readonly op: 'in' | 'notin'; readonly values: readonly string[] }
  | { readonly key: string; readonly op: 'exists' | '!exists' };

export type Selector = readonly Requirement[];

const splitTopLevel = (text: string): string[] => {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  parts.push(current);
  return parts.map((p) => p.trim()).filter((p) => p !== '');
};

/** Parses a selector; returns an error message for syntax the server would refuse. */
export function parseSelector(text: string | null): Selector | string {
  if (text === null || text.trim() === '') return [];
  const requirements: Requirement[] = [];
  for (const part of splitTopLevel(text)) {
    const set = /^([^\s!=()]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(part);
    if (set !== null) {
      const values = (set[3] ?? '')
        .split(',')
        .map((v) => v.trim())
        .filter((v) => v !== '');
      requirements.push({ key: set[1] as string, op: set[2] as 'in' | 'notin', values });
      continue;
    }
    const equality = /^([^\s!=()]+)\s*(==|=|!=)\s*([^\s!=(),]*)$/.exec(part);
    if (equality !== null) {
      const values = [equality[3] ?? ''];
      requirements.push({ key: equality[1] as string, op: equality[2] === '!=' ? 'notin' : 'in', values });
      continue;
    }
    const exists = /^(!?)([^\s!=(),]+)$/.exec(part);
    if (exists !== null) {
      requirements.push({ key: exists[2] as string, op: exists[1] === '!' ? '!exists' : 'exists' });
      continue;
    }
    return `unable to parse requirement: "${part}"`;
  }
  return requirements;
}

/** Whether the values (label values, or field values) satisfy every requirement. */
export function matches(selector: Selector, value: (key: string) => string | undefined): boolean {
  return selector.every((r) => {
    const v = value(r.key);
    switch (r.op) {
      case 'exists':
        return v !== undefined;
      case '!exists':
        return v === undefined;
      case 'in':
        return v !== undefined && r.values.includes(v);
      case 'notin':
        return v === undefined || !r.values.includes(v);
    }
  });
}
