// Why: the configs test runs one config through Whereabouts v0.9.4 and through ours and must say, field by
// field, where the two differ — with the address each chose normalised away (ours picks at random among the
// lowest free ones) and the podref's namespace (each plugin has its own) replaced by a placeholder. The IP
// arithmetic here is written for the test, independent of src/ip, so a bug there cannot hide itself.

export type CniError = { code: number; msg: string; details?: string };

/** What one plugin answered to one verb: its exit code and its stdout, parsed. */
export type Answer = { exit: number; result?: Record<string, unknown>; error?: CniError; raw: string };

type Entry = Record<string, unknown>;
export type Writes = {
  /** IPPools by name: spec.range and spec.allocations. */
  pools: Record<string, { range: string; allocations: Record<string, Entry> }>;
  /** OverlappingRangeIPReservations by name: their spec. */
  reservations: Record<string, Entry>;
  /** Leases by name. */
  leases: string[];
};

/** One plugin's run of a case: ADD, what was stored then, DEL, what was stored then. */
export type Run = {
  namespace: string;
  containerId: string;
  add: Answer;
  afterAdd: Writes;
  del: Answer;
  afterDel: Writes;
};

export type Difference = { key: string; whereabouts: unknown; ours: unknown };

// ---- addresses -------------------------------------------------------------------------------------

export type Addr = { family: 4 | 6; value: bigint };

export function parseAddr(text: string): Addr | undefined {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(text)) {
    const parts = text.split('.').map(Number);
    if (parts.some((p) => p > 255)) return undefined;
    return { family: 4, value: parts.reduce((v, p) => (v << 8n) | BigInt(p), 0n) };
  }
  if (!/^[0-9a-fA-F:]+$/.test(text) || !text.includes(':')) return undefined;
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groups = (s: string | undefined) => (s === undefined || s === '' ? [] : s.split(':'));
  const head = groups(halves[0]);
  const tail = groups(halves[1]);
  const fill = halves.length === 2 ? 8 - head.length - tail.length : 0;
  const all = [...head, ...Array<string>(fill).fill('0'), ...tail];
  if (all.length !== 8 || all.some((g) => g.length < 1 || g.length > 4)) return undefined;
  return { family: 6, value: all.reduce((v, g) => (v << 16n) | BigInt(`0x${g}`), 0n) };
}

/** RFC 5952 text, as Go prints an address (the WHATWG URL parser compresses IPv6 the same way). */
export function formatAddr({ family, value }: Addr): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 255n)).join('.');
  const full = [...Array(8).keys()]
    .map((i) => ((value >> BigInt(112 - 16 * i)) & 0xffffn).toString(16))
    .join(':');
  return new URL(`http://[${full}]/`).hostname.slice(1, -1);
}

/** `a.b.c.d/p` → address and prefix. */
export function parseCidrText(text: string): { addr: Addr; prefix: number } | undefined {
  const [ip, prefix] = text.split('/');
  const addr = parseAddr(ip ?? '');
  if (addr === undefined || prefix === undefined || !/^\d+$/.test(prefix)) return undefined;
  return { addr, prefix: Number(prefix) };
}

const networkOf = ({ addr, prefix }: { addr: Addr; prefix: number }): bigint => {
  const bits = addr.family === 4 ? 32 : 128;
  return (addr.value >> BigInt(bits - prefix)) << BigInt(bits - prefix);
};

/** Whether `address` lies in one of the `first-last` spans (a single address: exactly it). */
export function inSpans(address: string, spans: readonly string[]): boolean {
  const a = parseAddr(address);
  if (a === undefined) return false;
  return spans.some((span) => {
    const [first, last = first] = span.split('-').map(parseAddr);
    if (first === undefined || last === undefined) throw new Error(`bad span ${span} in the corpus`);
    return a.family === first.family && a.value >= first.value && a.value <= last.value;
  });
}

/** The first address of the spans, which Whereabouts (lowest free first, empty pool) must choose. */
export const lowestOf = (spans: readonly string[]): string => (spans[0] ?? '').split('-')[0] ?? '';

/** Whereabouts' OverlappingRangeIPReservation name of an address (`NormalizeIP`). */
export function reservationName(addr: Addr, networkName: string): string {
  let text = formatAddr(addr);
  if (text.endsWith(':')) text += '0';
  text = text.replaceAll(':', '-');
  return networkName === '' ? text : `${networkName}-${text}`;
}

// ---- normalising what a plugin answered and wrote ------------------------------------------------------

/** The addresses of an ADD result, in order. */
export function resultAddresses(answer: Answer): Addr[] {
  const ips = answer.result?.ips;
  if (!Array.isArray(ips)) return [];
  return ips.flatMap((entry) => {
    const parsed = parseCidrText(String((entry as Entry).address));
    return parsed === undefined ? [] : [parsed.addr];
  });
}

const placeholder = (run: Run, text: string) =>
  text.replaceAll(`${run.namespace}/`, '<ns>/').replaceAll(run.containerId, '<container>');

/**
 * What a plugin stored, with every reference to the addresses it chose replaced by `@ip<k>` (the k-th
 * address of its ADD result): pool offsets and reservation names. The offset is checked against the pool's
 * range on the way: an offset that is not some returned address stays as it is, and so differs.
 */
export function normaliseWrites(run: Run, writes: Writes, networkName: string): unknown {
  const chosen = resultAddresses(run.add);
  const pools = Object.fromEntries(
    Object.entries(writes.pools).map(([name, { range, allocations }]) => {
      const cidr = parseCidrText(range);
      const keyed = Object.entries(allocations).map(([offset, entry]) => {
        let key = `offset ${offset}`;
        if (cidr !== undefined && /^\d+$/.test(offset)) {
          const value = networkOf(cidr) + BigInt(offset);
          const k = chosen.findIndex((a) => a.family === cidr.addr.family && a.value === value);
          if (k >= 0) key = `@ip${k}`;
        }
        return [key, JSON.parse(placeholder(run, JSON.stringify(entry))) as unknown] as const;
      });
      return [name, { range, allocations: Object.fromEntries(keyed.sort(([a], [b]) => a.localeCompare(b))) }];
    }),
  );
  const reservations = Object.fromEntries(
    Object.entries(writes.reservations)
      .map(([name, spec]) => {
        const k = chosen.findIndex((a) => reservationName(a, networkName) === name);
        const { containerid: _, ...rest } = spec;
        return [
          k >= 0 ? `@ip${k}` : name,
          JSON.parse(placeholder(run, JSON.stringify(rest))) as unknown,
        ] as const;
      })
      .sort(([a], [b]) => a.localeCompare(b)),
  );
  return { pools, reservations };
}

// ---- comparing ---------------------------------------------------------------------------------------

/**
 * Error codes: Whereabouts returns every error of its own as a plain Go error, which the CNI library turns
 * into code 999; only the library's own checks (environment, version) carry a specific code. So a 999 of
 * Whereabouts against one of ours of the same class is the one expected pairing (a row of the docs' table).
 */
export const ourConfigCodes = new Set([2, 4, 6, 7, 11]);
export const codesMatch = (whereabouts: number | undefined, ours: number | undefined): boolean =>
  whereabouts === ours || (whereabouts === 999 && ours !== undefined && ourConfigCodes.has(ours));

/** JSON with every object's keys sorted: equality that ignores key order. */
const canonical = (value: unknown): string =>
  value === undefined
    ? 'undefined'
    : JSON.stringify(value, (_, v: unknown) =>
        typeof v === 'object' && v !== null && !Array.isArray(v)
          ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)))
          : v,
      );
const same = (a: unknown, b: unknown) => canonical(a) === canonical(b);

/** Compares one verb's answers; false when one succeeded and the other failed. */
function compareAnswers(verb: 'add' | 'del', w: Answer, o: Answer, into: Difference[]): boolean {
  const push = (key: string, whereabouts: unknown, ours: unknown) => {
    into.push({ key: `${verb}.${key}`, whereabouts, ours });
  };
  if ((w.exit === 0) !== (o.exit === 0)) {
    push('outcome', w.exit === 0 ? 'ok' : w.error, o.exit === 0 ? 'ok' : o.error);
    return false;
  }
  if (w.exit !== 0) {
    if (!codesMatch(w.error?.code, o.error?.code)) push('code', w.error, o.error);
    return true;
  }
  if (verb === 'del') {
    if (w.raw !== o.raw) push('stdout', w.raw, o.raw);
    return true;
  }
  const wr = w.result ?? {};
  const or = o.result ?? {};
  for (const key of new Set([...Object.keys(wr), ...Object.keys(or)])) {
    if (key === 'ips') continue;
    // Go prints the result's empty DNS struct as `{}`; ours leaves the key out (a row of the docs' table).
    if (key === 'dns' && same(wr.dns, {}) && or.dns === undefined) continue;
    if (!same(wr[key], or[key])) push(key, wr[key], or[key]);
  }
  const wIps = (Array.isArray(wr.ips) ? wr.ips : []) as Entry[];
  const oIps = (Array.isArray(or.ips) ? or.ips : []) as Entry[];
  if (wIps.length !== oIps.length) {
    push('ips.length', wIps, oIps);
    return true;
  }
  wIps.forEach((wEntry, k) => {
    const oEntry = oIps[k] ?? {};
    for (const field of new Set([...Object.keys(wEntry), ...Object.keys(oEntry)])) {
      if (field === 'address') {
        // The host part is checked against the case's allowed addresses; family and prefix must agree.
        const wa = parseCidrText(String(wEntry.address));
        const oa = parseCidrText(String(oEntry.address));
        if (wa?.addr.family !== oa?.addr.family || wa?.prefix !== oa?.prefix)
          push(`ips[${k}].address`, wEntry.address, oEntry.address);
      } else if (!same(wEntry[field], oEntry[field])) {
        push(`ips[${k}].${field}`, wEntry[field], oEntry[field]);
      }
    }
  });
  return true;
}

/**
 * Every difference between the two runs of one case, by key. Where one ADD succeeded and the other failed,
 * what each stored differs because of that one difference (`add.outcome`), so the stores are not compared.
 */
export function compareRuns(w: Run, o: Run, networkName: string): Difference[] {
  const differences: Difference[] = [];
  const sameOutcome = compareAnswers('add', w.add, o.add, differences);
  const writes = (stage: 'afterAdd' | 'afterDel', key: string) => {
    const wn = normaliseWrites(w, w[stage], networkName) as { pools: unknown; reservations: unknown };
    const on = normaliseWrites(o, o[stage], networkName) as { pools: unknown; reservations: unknown };
    if (!same(wn.pools, on.pools))
      differences.push({ key: `${key}.pools`, whereabouts: wn.pools, ours: on.pools });
    if (!same(wn.reservations, on.reservations))
      differences.push({ key: `${key}.reservations`, whereabouts: wn.reservations, ours: on.reservations });
  };
  if (sameOutcome) writes('afterAdd', 'add');
  compareAnswers('del', w.del, o.del, differences);
  if (sameOutcome) writes('afterDel', 'del');
  return differences;
}
