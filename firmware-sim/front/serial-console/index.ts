/**
 * The serial front of the emulator: a library's robot console on a pseudo-terminal, so a
 * serial robot client (or a person with a terminal program) opens a real tty path.
 */
import { openPty } from '../../../src/transport/pty/index.js';
import { RobotConsole } from './robot-console.js';
import type { ConsoleLibrary, RobotConsoleOptions } from './robot-console.js';

export { RobotConsole } from './robot-console.js';
export type { ConsoleLibrary, RobotConsoleOptions, RobotConsoleStats } from './robot-console.js';

/** A console being served; `stop()` detaches it and closes the pseudo-terminal (idempotent). */
export interface ServedConsole {
  /** `/dev/pts/N`: the path a client opens. */
  readonly ttyPath: string;
  readonly console: RobotConsole;
  stop(): Promise<void>;
}

/**
 * Serves `library`'s robot console on a new pseudo-terminal. Throws `PtyError` when the
 * machine cannot open one. A client that closes the tty is not an error: the console
 * keeps serving whoever opens the path next, until `stop()`.
 */
export function serveSerialConsole(library: ConsoleLibrary, opts: RobotConsoleOptions = {}): ServedConsole {
  const pty = openPty();
  const console = new RobotConsole(library, pty.master, opts);
  let stopping: Promise<void> | undefined;
  return {
    ttyPath: pty.slavePath,
    console,
    stop(): Promise<void> {
      stopping ??= (async () => {
        console.stop();
        await pty.close();
      })();
      return stopping;
    },
  };
}
