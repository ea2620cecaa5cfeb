// The CNI specification versions the plugin speaks, and what each allows.

export const supportedVersions = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export type CniVersion = (typeof supportedVersions)[number];

export const isSupported = (version: string): version is CniVersion =>
  (supportedVersions as readonly string[]).includes(version);

const parts = (version: string): number[] => version.split('.').map((p) => Number(p));

/** Whether `version` is at least `minimum` (both dotted numbers). */
export function atLeast(version: string, minimum: string): boolean {
  const a = parts(version);
  const b = parts(minimum);
  for (let i = 0; i < 3; i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x > y;
  }
  return true;
}

/** The first version each verb exists in (libcni's skel refuses the verb for older configs). */
export const verbSince = {
  ADD: '0.1.0',
  DEL: '0.1.0',
  VERSION: '0.1.0',
  CHECK: '0.4.0',
  GC: '1.1.0',
  STATUS: '1.1.0',
} as const;

export const latest = supportedVersions[supportedVersions.length - 1] as CniVersion;

/** The cniVersion of a network config text if it is one we speak, for answering in it; else the latest. */
export function answerVersion(stdin: string): CniVersion {
  let version: unknown;
  try {
    version = (JSON.parse(stdin) as { cniVersion?: unknown } | null)?.cniVersion;
  } catch {
    return latest;
  }
  return typeof version === 'string' && isSupported(version) ? version : latest;
}

/** The VERSION result. */
export const versionAnswer = (stdin: string): string =>
  `${JSON.stringify({ cniVersion: answerVersion(stdin), supportedVersions })}\n`;
