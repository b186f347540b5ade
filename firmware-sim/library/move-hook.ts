/**
 * The external move hook: a command run before every robot motion, as a lab rig uses to
 * drive a real robot, log moves or inject failures. The command gets the motion in its
 * environment; exit status 0 lets the motion go ahead, anything else fails it.
 */
import { spawn } from 'node:child_process';
import { CommandAborted } from '../engine/timing.js';
import { elementKindTag, type MoveEvent, type MoveHook } from '../smc/index.js';

/** The hook command failed, timed out or could not start; the robot move fails with HARDWARE ERROR. */
export class MoveHookError extends Error {
  override readonly name = 'MoveHookError';
  constructor(
    readonly code: 'EHOOKEXIT' | 'EHOOKTIMEOUT' | 'EHOOKSPAWN',
    message: string,
    readonly exitCode?: number | null,
    readonly stderr?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface MoveHookCommand {
  readonly argv: readonly string[];
  /** The command is killed (SIGKILL) and the move failed after this long. */
  readonly timeoutSeconds: number;
  /** Working directory; default the process's. */
  readonly cwd?: string;
}

/** Environment the hook command sees, on top of the emulator's own. */
export function moveHookEnv(e: MoveEvent): Record<string, string> {
  return {
    PTPVTS_LIBRARY: e.library,
    PTPVTS_MOVE_SOURCE: String(e.source),
    PTPVTS_MOVE_DEST: String(e.destination),
    PTPVTS_MOVE_SOURCE_TYPE: elementKindTag[e.sourceKind],
    PTPVTS_MOVE_DEST_TYPE: elementKindTag[e.destinationKind],
    PTPVTS_BARCODE: e.barcode,
    PTPVTS_MEDIA_TYPE: e.mediaType,
    PTPVTS_MOVE_OPERATION: e.operation,
  };
}

/**
 * Runs the command for one motion. Resolves on exit status 0. Rejects with
 * {@link MoveHookError}: `EHOOKEXIT` on another status or a signal, `EHOOKTIMEOUT` after
 * `timeoutSeconds` (the child is killed), `EHOOKSPAWN` when it cannot start. When `signal`
 * aborts, the child is killed and the promise rejects with `CommandAborted`.
 */
export function runMoveHookCommand(cmd: MoveHookCommand, e: MoveEvent, signal: AbortSignal): Promise<void> {
  const [file, ...args] = cmd.argv;
  if (file === undefined) return Promise.reject(new MoveHookError('EHOOKSPAWN', 'move hook command is empty'));
  if (signal.aborted) return Promise.reject(new CommandAborted('command aborted'));
  return new Promise<void>((resolve, reject) => {
    const child = spawn(file, args, {
      env: { ...process.env, ...moveHookEnv(e) },
      stdio: ['ignore', 'ignore', 'pipe'],
      ...(cmd.cwd ? { cwd: cmd.cwd } : {}),
    });
    let stderr = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => {
      if (stderr.length < 4096) stderr += d;
    });
    let settled = false;
    const finish = (err?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve();
    };
    const onAbort = (): void => {
      child.kill('SIGKILL');
      finish(new CommandAborted('command aborted'));
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(new MoveHookError('EHOOKTIMEOUT', `move hook ${cmd.argv.join(' ')} did not finish within ${cmd.timeoutSeconds} s`, null, stderr));
    }, cmd.timeoutSeconds * 1000);
    signal.addEventListener('abort', onAbort, { once: true });
    child.on('error', (err) => finish(new MoveHookError('EHOOKSPAWN', `move hook ${file} could not start: ${err.message}`, null, stderr, { cause: err })));
    child.on('close', (code, sig) => {
      if (code === 0) finish();
      else {
        const how = sig ? `was killed by ${sig}` : `exited with status ${code}`;
        finish(new MoveHookError('EHOOKEXIT', `move hook ${cmd.argv.join(' ')} ${how} for ${e.barcode} ${e.source}->${e.destination}${stderr ? `: ${stderr.trim()}` : ''}`, code, stderr));
      }
    });
  });
}

/** The command as a {@link MoveHook} for the changer. */
export function commandMoveHook(cmd: MoveHookCommand): MoveHook {
  return (e, signal) => runMoveHookCommand(cmd, e, signal);
}
