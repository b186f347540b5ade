/**
 * The timing model: mechanical operations take the personality's time multiplied by the
 * unit's `timeScale` (0 in tests, 1 for real-time behaviour). A wait ends early when the
 * command is aborted, and rejects with {@link CommandAborted}.
 */

export class CommandAborted extends Error {
  override readonly name = 'CommandAborted';
  readonly code = 'ECANCELED';
}

/** Waits `seconds * timeScale` seconds; resolves at once when the product is 0. */
export function mechanicalDelay(seconds: number, timeScale: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(new CommandAborted('command aborted'));
  const ms = seconds * timeScale * 1000;
  if (!(ms > 0)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new CommandAborted('command aborted'));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Never resolves until `signal` aborts (a hung drive): then rejects with {@link CommandAborted}. */
export function hangUntilAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_resolve, reject) => {
    if (signal.aborted) {
      reject(new CommandAborted('command aborted'));
      return;
    }
    signal.addEventListener('abort', () => reject(new CommandAborted('command aborted')), { once: true });
  });
}
