/**
 * Pseudo-terminals for the serial robot console: the emulator talks through the master
 * side as a Duplex stream; clients open `slavePath` like any serial device. The slave is
 * in raw mode (no echo, no line editing, no CR/LF translation, no signal characters), so
 * bytes cross unchanged in both directions.
 */
import { closeSync } from 'node:fs';
import { ReadStream } from 'node:tty';
import type { Duplex } from 'node:stream';
import { native } from '../../native.js';

export class PtyError extends Error {
  override readonly name = 'PtyError';
  readonly code: string;
  readonly errno?: number;
  readonly syscall?: string;
  constructor(code: string, message: string, options?: { cause?: unknown; errno?: number; syscall?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    if (options?.errno !== undefined) this.errno = options.errno;
    if (options?.syscall !== undefined) this.syscall = options.syscall;
  }
}

/**
 * An open pseudo-terminal pair.
 *
 * The slave side stays open inside this process for the pair's lifetime, so clients may
 * open and close `slavePath` as often as they like without the master seeing a hangup;
 * the master therefore never ends on its own. There are no timeouts. Writes after
 * `close()` fail with the stream's usual `ERR_STREAM_DESTROYED`; stream errors (EIO from
 * the kernel) are emitted on `master` as `'error'`.
 */
export interface PtyPair {
  /** `/dev/pts/N`: what a client opens. */
  readonly slavePath: string;
  /** The master side: what is written arrives at the slave, and the reverse. */
  readonly master: Duplex;
  /** Destroys the master stream and closes both descriptors. Idempotent. */
  close(): Promise<void>;
}

/** Opens a new pair. Throws {@link PtyError} with the OS code (`ENOSPC`: no free ptys, `EMFILE`...). */
export function openPty(): PtyPair {
  let fds: { masterFd: number; slaveFd: number; slavePath: string };
  try {
    fds = native.openPty();
  } catch (err) {
    const e = err as { code?: unknown; errno?: unknown; syscall?: unknown; message?: unknown };
    throw new PtyError(typeof e.code === 'string' ? e.code : 'EIO', `cannot open a pseudo-terminal: ${String(e.message)}`, {
      cause: err,
      ...(typeof e.errno === 'number' ? { errno: e.errno } : {}),
      ...(typeof e.syscall === 'string' ? { syscall: e.syscall } : {}),
    });
  }
  // A tty handle (not net.Socket, which refuses TTY descriptors, nor fs streams, which
  // would park a threadpool thread in a blocking read): libuv polls the master and the
  // socket underneath is a full Duplex.
  const master = new ReadStream(fds.masterFd);
  let slaveFd = fds.slaveFd;
  let closing: Promise<void> | undefined;
  return {
    slavePath: fds.slavePath,
    master,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        const done = () => {
          if (slaveFd >= 0) {
            closeSync(slaveFd);
            slaveFd = -1;
          }
          resolve();
        };
        if (master.closed) done();
        else {
          master.once('close', done);
          master.destroy();
        }
      });
      return closing;
    },
  };
}
