// One shutdown sequence for every long-running component (the agent, the exporter, the slice controller, the
// embedded API server) and for the commands that run them: each part is registered as it starts, with how it
// stops; the whole stops once, the last part started first — what was started on top of a part is gone before
// the part itself goes — each stop awaited before the next begins. A stop that fails does not keep the others
// from stopping: it is reported, by name, when the sequence is done (`StopFailed`), never swallowed.

/** How one part stops: what it returns is awaited. */
export type StopPart = () => unknown;

export type Parts = {
  /**
   * Registers a part that has started. One registered once the sequence has begun is stopped at once (the
   * sequence waits for it too): a part that finished starting late does not outlive the rest.
   */
  started(name: string, stop: StopPart): void;
  /** Stops every part, the last started first. The same promise to every caller; rejects with StopFailed. */
  stop(): Promise<void>;
  /** Whether the sequence has begun. */
  stopping(): boolean;
};

/** The parts whose stop failed, each with its error. */
export class StopFailed extends Error {
  readonly failures: readonly { readonly part: string; readonly error: unknown }[];
  constructor(failures: readonly { readonly part: string; readonly error: unknown }[]) {
    super(
      failures
        .map(
          ({ part, error }) =>
            `${part} did not stop cleanly: ${error instanceof Error ? error.message : String(error)}`,
        )
        .join('; '),
    );
    this.name = 'StopFailed';
    this.failures = failures;
  }
}

export function parts(): Parts {
  const started: { readonly name: string; readonly stop: StopPart }[] = [];
  const failures: { part: string; error: unknown }[] = [];
  /** Stops of parts registered once the sequence had begun. */
  const late: Promise<void>[] = [];
  let sequence: Promise<void> | undefined;

  const stopOne = async (name: string, stop: StopPart): Promise<void> => {
    try {
      await stop();
    } catch (error) {
      failures.push({ part: name, error });
    }
  };

  return {
    started: (name, stop) => {
      if (sequence === undefined) started.push({ name, stop });
      else late.push(stopOne(name, stop));
    },
    stopping: () => sequence !== undefined,
    stop: () =>
      (sequence ??= (async () => {
        for (let part = started.pop(); part !== undefined; part = started.pop())
          await stopOne(part.name, part.stop);
        while (late.length > 0) await Promise.all(late.splice(0));
        if (failures.length > 0) throw new StopFailed(failures);
      })()),
  };
}
