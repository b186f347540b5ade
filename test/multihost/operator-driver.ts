// An operator inside a network namespace: JSON requests on stdin, JSON answers on stdout,
// one per line, so a test outside the namespaces can drive VTCs it cannot reach itself.
import { createInterface } from 'node:readline';
import { loadOperatorKey, loadTopology, vtcOf } from '../../src/cli/topology.js';
import { ControlClient } from '../../src/vtc/control-client.js';
import type { OperatorCommand } from '../../src/ptp/engine.js';

interface Request {
  readonly id: number;
  readonly vtc: string;
  readonly op: 'status' | 'command' | 'write' | 'read';
  readonly cmd?: OperatorCommand;
  readonly volser?: string;
  readonly data?: string;
}

const t = loadTopology(process.argv[2] ?? 'topology.yaml');
const ids = t.vtcs.map((v) => v.id);
const operatorKey = loadOperatorKey(t);
const clients = new Map<string, ControlClient>();
const client = (id: string): ControlClient => {
  let c = clients.get(id);
  if (c === undefined) {
    c = new ControlClient(ids, id, vtcOf(t, id).control, { secret: t.secret, operatorKey }, 1500);
    clients.set(id, c);
  }
  return c;
};

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const req = JSON.parse(line) as Request;
  const run = async (): Promise<unknown> => {
    const c = client(req.vtc);
    switch (req.op) {
      case 'status':
        return c.status();
      case 'command':
        return c.command(req.cmd as OperatorCommand, 8000);
      case 'write':
        return c.writeVolume(req.volser ?? '', Buffer.from(req.data ?? ''));
      case 'read': {
        const r = await c.readVolume(req.volser ?? '');
        return { vts: r.vts, data: Buffer.from(r.data).toString('utf8') };
      }
    }
  };
  run().then(
    (result) => process.stdout.write(`${JSON.stringify({ id: req.id, result })}\n`),
    (e: unknown) => process.stdout.write(`${JSON.stringify({ id: req.id, error: { code: (e as { code?: string }).code ?? 'EUNKNOWN', message: (e as Error).message } })}\n`),
  );
});
rl.on('close', () => {
  for (const c of clients.values()) c.close();
});
process.stdout.write('{"ready":true}\n');
