// Errors are values that carry their CNI error code from where they arise to the plugin's stdout, so every
// layer decides the code once and nothing downstream has to guess it from a message.

/** Error codes of the CNI specification 1.1 (SPEC.md, "Error"). */
export const CniCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnvironment: 4,
  IoFailure: 5,
  DecodeFailure: 6,
  InvalidConfig: 7,
  TryAgainLater: 11,
  NotAvailable: 50,
  /** Plugin-specific (100+): CHECK found the allocation missing or different from prevResult. */
  CheckFailed: 100,
  Internal: 999,
} as const;
export type CniCode = (typeof CniCode)[keyof typeof CniCode];

/** The CNI error's short `msg` for each code; `details` carries the specifics. */
const titles: Record<CniCode, string> = {
  1: 'Incompatible CNI version',
  2: 'Unsupported field in network configuration',
  3: 'Container unknown or does not exist',
  4: 'Invalid environment variables',
  5: 'I/O failure',
  6: 'Failed to decode content',
  7: 'Invalid network configuration',
  11: 'Try again later',
  50: 'Plugin not available',
  100: 'IPAM check failed',
  999: 'Internal error',
};

export type IpamError = { readonly code: CniCode; readonly msg: string; readonly details: string };

export const ipamError = (code: CniCode, details: string): IpamError => ({
  code,
  msg: titles[code],
  details,
});

export type Result<T, E = IpamError> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: E };

export const ok = <T>(value: T): { readonly ok: true; readonly value: T } => ({ ok: true, value });
export const fail = <E = IpamError>(error: E): { readonly ok: false; readonly error: E } => ({
  ok: false,
  error,
});

/**
 * The errno code of a failed system call (ENOENT, EACCES, …). Duck-typed: errors from node:fs may come
 * from another realm (as under Jest), where instanceof fails.
 */
export const errnoOf = (e: unknown): string | undefined =>
  typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string' ? e.code : undefined;
