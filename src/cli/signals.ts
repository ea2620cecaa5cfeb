// How a long-running command learns it should stop: the first SIGINT (Ctrl-C) or SIGTERM (the kubelet
// stopping the pod). Repeats are ignored rather than fatal — `npm start` forwards a terminal's Ctrl-C a
// second time, and a kubelet that loses patience sends SIGKILL, not another SIGTERM — so the clean stop
// that follows always finishes (its own bounds decide how long it takes).

/** Resolves at the first SIGINT or SIGTERM this process receives from now on. */
export function stopRequested(): Promise<void> {
  return new Promise<void>((resolve) => {
    process.on('SIGINT', () => {
      resolve();
    });
    process.on('SIGTERM', () => {
      resolve();
    });
  });
}
