/**
 * `ptpvts volumes`: what an operator and a script rely on (exit codes, messages naming
 * what was wrong, the --json documents), and `show --topology` asking both VTS of a
 * running PtP system as the operator.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { stringify } from 'yaml';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { exportPrivateKey, exportPublicKey } from '../ptp/mac.js';
import { LocalCluster } from '../scenario/cluster.js';
import { memoryOut } from './output.js';
import { expandVolsers, registerVolumeCommands } from './volumes.js';

let dir: string;
let cat: string;
let c: LocalCluster | null = null;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ptpvts-volumes-cli-'));
  cat = join(dir, 'catalogue.json');
});
afterEach(async () => {
  await c?.stop();
  c = null;
  rmSync(dir, { recursive: true, force: true });
});

/** `ptpvts volumes ...` with the CLI's error convention: the message alone, exit 1. */
async function volumes(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const o = memoryOut();
  const program = new Command('ptpvts').exitOverride().configureOutput({ writeOut: (s) => o.line(s.trimEnd()), writeErr: (s) => o.error(s.trimEnd()) });
  registerVolumeCommands(program, o);
  let code = 0;
  try {
    await program.parseAsync(['node', 'ptpvts', 'volumes', ...args]);
  } catch (e) {
    const err = e as { code?: string; exitCode?: number };
    if (typeof err.code === 'string' && err.code.startsWith('commander.')) code = err.exitCode ?? 1;
    else {
      o.error(`ptpvts: ${(e as Error).message}`);
      code = 1;
    }
  }
  return { code, out: o.lines.join('\n'), err: o.errors.join('\n') };
}

describe('ptpvts volumes', () => {
  it('inserts a range of scratch volumes, lists them by category, ejects, and says what was wrong', async () => {
    const ins = await volumes('insert', 'V00001-V00010', '--catalogue', cat, '--slots', '16');
    expect(ins.code).toBe(0);
    expect(ins.out).toMatch(/^inserted 10 volumes \(scratch\): V00001 slot 1, .* V00010 slot 10$/);
    const priv = await volumes('insert', 'P00001', '--category', 'private', '--copy-mode', 'deferred', '-c', cat, '--json');
    expect(JSON.parse(priv.out)).toMatchObject({ format: 'ptpvts.volumes-insert/1', inserted: [{ volser: 'P00001', category: 'private', slot: 11, copyMode: 'deferred' }] });

    const list = JSON.parse((await volumes('list', '-c', cat, '--json')).out) as { format: string; slots: number; volumes: { volser: string; category: string }[] };
    expect(list.format).toBe('ptpvts.volumes/1');
    expect(list.slots).toBe(16);
    expect(list.volumes.map((v) => v.volser)).toEqual([...expandVolsers(['V00001-V00010']), 'P00001']);
    const text = await volumes('list', '-c', cat, '--category', 'private');
    expect(text.out.split('\n')).toEqual(['11 volumes in 16 slots: 10 scratch, 1 private', '  P00001  private  slot   11  copy deferred']);

    expect(await volumes('insert', 'V00003', '-c', cat)).toMatchObject({ code: 1, err: 'ptpvts: volume V00003 is already in the catalogue' });
    expect(await volumes('insert', 'TOOLONG7', '-c', cat)).toMatchObject({ code: 1, err: expect.stringContaining('"TOOLONG7" is not a volser') });
    expect(await volumes('insert', 'X00001-X00006', '-c', cat)).toMatchObject({ code: 1, err: 'ptpvts: no free slot for X00006: all 16 slots hold a volume' });
    expect((await volumes('list', '-c', cat, '--json')).out).toContain('"volser": "V00010"');
    expect(JSON.parse((await volumes('list', '-c', cat, '--json')).out).volumes).toHaveLength(11);
    expect(await volumes('list', '-c', cat, '--category', 'blue')).toMatchObject({ code: 1, err: 'ptpvts: --category must be scratch or private (got "blue")' });

    const ej = await volumes('eject', 'V00002', 'V00004', 'NOPE', '-c', cat, '--json');
    expect(ej.code).toBe(1);
    expect(JSON.parse(ej.out)).toMatchObject({ format: 'ptpvts.volumes-eject/1', ejected: [{ volser: 'V00002' }, { volser: 'V00004' }], notInCatalogue: ['NOPE'] });
    expect(ej.err).toBe('ptpvts: not in the catalogue: NOPE');
    const show = await volumes('show', 'v00005', '-c', cat);
    expect(show.out).toMatch(/^V00005: scratch, home slot 5, copy mode the VTC's default, inserted /);
    expect(await volumes('show', 'V00002', '-c', cat)).toMatchObject({ code: 1, err: `ptpvts: volume V00002 is not in the catalogue ${cat}` });
    expect(await volumes('list', '-c', join(dir, 'none.json'))).toMatchObject({ code: 1, err: expect.stringContaining('no volume catalogue at') });
    writeFileSync(join(dir, 'bad.json'), '{"format":"other"}');
    expect(await volumes('list', '-c', join(dir, 'bad.json'))).toMatchObject({ code: 1, err: expect.stringContaining('is not a volume catalogue: format') });
  });

  it('show --topology asks both VTS, as the operator, for the volume', async () => {
    c = await LocalCluster.start({ n: 2, dir: join(dir, 'ptp') });
    expect(await c.waitFor(() => Object.values(c!.statuses()).every((s) => s === 'online-both'), 8000)).toBe(true);
    await c.agent('vtc1').writeVolume('V00001', Buffer.from('seven bytes'));
    const opKey = join(dir, 'operator.key');
    writeFileSync(opKey, exportPrivateKey(c.keyring.operator.privateKey), { mode: 0o600 });
    const topo = join(dir, 'topology.yaml');
    const vts = (x: 'A' | 'B') => ({ listen: `127.0.0.1:${c!.vts[x].port}`, cacheDir: join(dir, 'ptp', `vts-${x}`, 'cache'), stateDir: join(dir, 'ptp', `vts-${x}`, 'state') });
    writeFileSync(
      topo,
      stringify({
        ptpId: 'ptp1',
        secret: c.secret,
        vtcs: c.names.map((n) => ({ id: n, listen: `127.0.0.1:${c!.ports.get(n)}`, journalDir: join(dir, 'ptp', n), publicKey: exportPublicKey(c!.keyring.publicKeys.get(n)!) })),
        vts: { A: vts('A'), B: vts('B') },
        operator: { publicKey: exportPublicKey(c.keyring.operator.publicKey), keyFile: opKey },
      }),
    );
    await volumes('insert', 'V00001', 'V00002', '-c', cat);
    const one = JSON.parse((await volumes('show', 'V00001', '-c', cat, '-t', topo, '--json')).out) as { vts: Record<string, Record<string, unknown>> };
    expect(one.vts.A).toMatchObject({ reachable: true, present: true, consistent: true, mounted: false });
    expect(one.vts.B).toMatchObject({ reachable: true, present: true, consistent: true, mounted: false });
    expect(one.vts.A!.generation).toBe(one.vts.B!.generation);
    const two = await volumes('show', 'V00002', '-c', cat, '-t', topo);
    expect(two.out.split('\n').slice(1)).toEqual(['  VTS A: holds no generation', '  VTS B: holds no generation']);
    await c.crashVts('B');
    const down = await volumes('show', 'V00001', '-c', cat, '-t', topo);
    expect(down.out).toMatch(/VTS B: unreachable \(/);
  }, 30_000);
});
