// Waiting in tests for what another process or the API server does: by polling a condition until it holds
// (never a fixed sleep), and by calling again while a real API server is restarting.

/** Waits until `condition` holds (polled), or fails saying what it waited for. */
export async function until(
  what: string,
  condition: () => Promise<boolean> | boolean,
  timeoutMs = 40_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs an API call again while the server answers 429 or 5xx or cannot be reached (just after a restart). */
export async function whenServed<T>(call: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      return await call();
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      const busy = typeof code !== 'number' || code === 429 || code >= 500;
      if (!busy || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
