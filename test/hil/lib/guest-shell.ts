/**
 * A QEMU guest that takes shell steps from the host over a virtio-serial port
 * (guest/command-loop.sh), so that one boot serves a whole story: the host acts on the
 * system under test between steps (takes a VTS out, kills it) while the guest keeps its
 * iSCSI attachments, its loaded cartridges and its files in /tmp.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectAgentSocket, projectRoot, startGuest, type GuestRun, type IscsiLun, type RunningGuest } from './guest.js';

export interface StepResult {
  readonly rc: number;
  /** What the step printed (stdout and stderr, interleaved). */
  readonly output: string;
  readonly ms: number;
}

export interface GuestShellOptions {
  luns: IscsiLun[];
  /** Extra files in the guest (path without leading slash, e.g. `hil/lib.sh`). */
  files?: Record<string, string | Uint8Array>;
  /** Whole-guest limit (default 10 minutes). */
  timeoutMs?: number;
  /** Time allowed from QEMU's start to the guest's READY (default 120 s). */
  bootTimeoutMs?: number;
  /** Boot the backup layer too (btape, amtapetype and perl). */
  backupLayer?: boolean;
}

const loopScript = (): string => readFileSync(join(projectRoot, 'test', 'hil', 'guest', 'command-loop.sh'), 'utf8');

export class GuestShell {
  readonly #console: { text: string };
  /** From QEMU's start to the guest's READY. */
  readonly bootMs: number;
  readonly #guest: RunningGuest;
  readonly #socket: Socket;
  readonly #dir: string;
  #buf = '';
  #nextId = 1;
  readonly #waiting = new Map<number, { resolve: (r: StepResult) => void; reject: (e: Error) => void; started: number }>();
  #gone: Error | null = null;

  private constructor(guest: RunningGuest, socket: Socket, dir: string, bootMs: number, consoleText: { text: string }) {
    this.#console = consoleText;
    this.#guest = guest;
    this.#socket = socket;
    this.#dir = dir;
    this.bootMs = bootMs;
    socket.on('data', (d: Buffer) => this.#onData(d.toString('latin1')));
    socket.on('close', () => this.#fail(new Error('guest command channel closed')));
    socket.on('error', (e) => this.#fail(new Error(`guest command channel failed: ${e.message}`)));
    void guest.done.then((r) => this.#fail(new Error(`guest powered off (exit ${r.exitCode})`)));
  }

  /** Boots the guest with the LUNs attached and waits for its command loop. */
  static async boot(o: GuestShellOptions): Promise<GuestShell> {
    const dir = mkdtempSync(join(tmpdir(), 'ptpvts-guest-shell-'));
    const socketPath = join(dir, 'cmd.sock');
    const consoleText = { text: '' };
    const guest = startGuest({
      script: loopScript(),
      luns: o.luns,
      ...(o.files === undefined ? {} : { files: o.files }),
      agentSocket: socketPath,
      agentLayer: false,
      ...(o.backupLayer ? { backupLayer: true } : {}),
      timeoutMs: o.timeoutMs ?? 600_000,
      onOutput: (s) => (consoleText.text += s),
    });
    const started = Date.now();
    let socket: Socket;
    try {
      socket = await connectAgentSocket(socketPath, 30_000);
    } catch (e) {
      guest.kill();
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
    // Wait for READY (or the guest's end, or the boot limit).
    const ready = await new Promise<string | null>((resolve) => {
      let got = '';
      const t = setTimeout(() => resolve(null), o.bootTimeoutMs ?? 120_000);
      const onData = (d: Buffer): void => {
        got += d.toString('latin1');
        const nl = got.indexOf('\n');
        if (nl >= 0) {
          socket.off('data', onData);
          clearTimeout(t);
          resolve(got);
        }
      };
      socket.on('data', onData);
      void guest.done.then(() => {
        clearTimeout(t);
        resolve(null);
      });
    });
    if (ready === null || !ready.startsWith('READY')) {
      guest.kill();
      socket.destroy();
      const run = await guest.done;
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`the guest did not come up (${ready === null ? 'no READY' : `got ${JSON.stringify(ready.slice(0, 80))}`}); console:\n${run.output.slice(-4000)}`);
    }
    const shell = new GuestShell(guest, socket, dir, Date.now() - started, consoleText);
    const rest = ready.slice(ready.indexOf('\n') + 1);
    if (rest.length > 0) shell.#onData(rest);
    return shell;
  }

  /** Everything the serial console printed so far (kernel messages, markers). */
  get console(): string {
    return this.#console.text;
  }

  #onData(s: string): void {
    this.#buf += s;
    for (;;) {
      const nl = this.#buf.indexOf('\n');
      if (nl < 0) return;
      const line = this.#buf.slice(0, nl).trimEnd();
      this.#buf = this.#buf.slice(nl + 1);
      const m = /^OUT (\d+) (\d+) ?(\S*)$/u.exec(line);
      if (!m) continue;
      const id = Number(m[1]);
      const w = this.#waiting.get(id);
      if (!w) continue;
      this.#waiting.delete(id);
      w.resolve({ rc: Number(m[2]), output: Buffer.from(m[3] ?? '', 'base64').toString('utf8'), ms: Date.now() - w.started });
    }
  }

  #fail(e: Error): void {
    this.#gone ??= e;
    for (const w of this.#waiting.values()) w.reject(e);
    this.#waiting.clear();
  }

  /** Runs `script` with busybox sh in the guest (cwd /hil); rejects when the guest is gone or the step outlives `timeoutMs`. */
  run(script: string, timeoutMs = 120_000): Promise<StepResult> {
    if (this.#gone) return Promise.reject(this.#gone);
    const id = this.#nextId++;
    return new Promise<StepResult>((resolve, reject) => {
      const t = setTimeout(() => {
        this.#waiting.delete(id);
        reject(new Error(`guest step ${id} still running after ${timeoutMs} ms:\n${script}`));
      }, timeoutMs);
      this.#waiting.set(id, {
        resolve: (r) => (clearTimeout(t), resolve(r)),
        reject: (e) => (clearTimeout(t), reject(e)),
        started: Date.now(),
      });
      this.#socket.write(`RUN ${id} ${Buffer.from(script).toString('base64')}\n`);
    });
  }

  /** Ends the command loop (the guest powers off), killing QEMU if it does not within `graceMs`. */
  async close(graceMs = 20_000): Promise<GuestRun> {
    if (!this.#gone) this.#socket.write('QUIT\n');
    const t = setTimeout(() => this.#guest.kill(), graceMs);
    const run = await this.#guest.done;
    clearTimeout(t);
    this.#socket.destroy();
    rmSync(this.#dir, { recursive: true, force: true });
    return run;
  }
}
