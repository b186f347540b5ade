/** Helpers for runs that start PtP processes on 127.0.0.1: scenario systems, the multi-host test, the recovery benchmark. */
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';

/** `n` TCP ports free on 127.0.0.1 right now (bound, read, released). */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<ReturnType<typeof createServer>>((r) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => r(s));
    })),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/** SIGTERM to each process still running, SIGKILL to any not gone after `graceMs`; resolves when all are gone. */
export async function stopProcesses(procs: readonly ChildProcess[], graceMs = 5000): Promise<void> {
  await Promise.all(
    procs.map((p) => new Promise<void>((r) => {
      if (p.exitCode !== null || p.signalCode !== null) return r();
      const t = setTimeout(() => {
        p.kill('SIGKILL');
        r();
      }, graceMs);
      p.once('exit', () => {
        clearTimeout(t);
        r();
      });
      p.kill('SIGTERM');
    })),
  );
}
