/**
 * `--json` on the read commands: one JSON document on stdout, of the shape docs/json.md
 * gives, checked by parsing it (never by matching text).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { statusJson } from '../../src/cli/ptp-status.js';
import type { AgentStatus } from '../../src/vtc/agent.js';
import { runCli, writeSmallLab } from './fixtures/in-process-cli.js';

let dir: string;
let yaml: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ptpvts-json-'));
  yaml = writeSmallLab(dir, 'jsontest');
  process.exitCode = undefined;
});
afterEach(() => {
  process.exitCode = undefined;
  rmSync(dir, { recursive: true, force: true });
});

const run = runCli;

async function json(...args: string[]): Promise<{ code: number; doc: Record<string, unknown> }> {
  const r = await run(...args);
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(r.out) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`ptpvts ${args.join(' ')} did not print one JSON document: ${(e as Error).message}\nstdout: ${r.out}\nstderr: ${r.err}`);
  }
  return { code: r.code, doc };
}

describe('--json on the read commands', () => {
  it('inventory --json', async () => {
    const { code, doc } = await json('inventory', '-l', yaml, '--json');
    expect(code).toBe(0);
    expect(doc).toMatchObject({ format: 'ptpvts.inventory/1', slots: 20, drives: 2, importExport: 1 });
    const elements = doc.elements as Record<string, unknown>[];
    expect(elements).toHaveLength(23);
    expect(elements[0]).toEqual({ element: 'drive 1', kind: 'drive', address: 0x100, full: false, barcode: null, sourceAddress: null, exception: null });
    expect(elements.find((e) => e.element === 'slot 1')).toMatchObject({ kind: 'slot', address: 0x1000, full: true, barcode: 'LAB001L8' });
  });

  it('tape status --json, empty drive and loaded drive', async () => {
    const empty = await json('tape', 'status', '-l', yaml, '--json');
    expect(empty.code).toBe(0);
    expect(empty.doc).toMatchObject({ format: 'ptpvts.tape-status/1', drive: 1, ready: false, cartridge: null, position: null, tapeAlerts: [] });
    expect(typeof empty.doc.notReady).toBe('string');
    expect((await run('load', 'LAB002L8', '-l', yaml)).code).toBe(0);
    const loaded = await json('tape', 'status', '-l', yaml, '--json');
    expect(loaded.doc).toMatchObject({ ready: true, notReady: null, position: { block: 0, file: 0, bop: true, eop: false, pastEarlyWarning: false } });
    expect(loaded.doc.cartridge).toMatchObject({ writeProtected: false, blockSize: 0 });
    expect(Array.isArray(loaded.doc.tapeAlerts)).toBe(true);
  });

  it('media check --json on a cartridge, and on a file that is not one (exit 1)', async () => {
    expect((await run('load', 'LAB003L8', '-l', yaml)).code).toBe(0);
    expect((await run('tape', 'write', '-l', yaml, '--size', '100KiB')).code).toBe(0);
    expect((await run('unload', '-l', yaml)).code).toBe(0);
    const good = await json('media', 'check', join(dir, 'media', 'LAB003L8.tape'), '--json');
    expect(good.code).toBe(0);
    expect(good.doc).toMatchObject({ format: 'ptpvts.media-check/1', cartridge: true, ok: true, blocks: 1, filemarks: 1, bytes: 100 * 1024, damaged: [] });
    expect(good.doc.header).toMatchObject({ barcode: 'LAB003L8' });
    const junk = join(dir, 'junk.bin');
    writeFileSync(junk, Buffer.alloc(4096, 7));
    const bad = await json('media', 'check', junk, '--json');
    expect(bad.code).toBe(1);
    expect(bad.doc).toMatchObject({ format: 'ptpvts.media-check/1', cartridge: false, ok: false, header: null });
    expect(typeof bad.doc.headerError).toBe('string');
  });

  it('status --json: a stable shape with serving hosts, key times and next steps', () => {
    const s: AgentStatus = {
      vtc: 'vtc2',
      ptp: 'offline',
      keySeq: 1,
      threshold: 2,
      vts: { A: { name: 'A', inOperation: true, lastKeySeq: 1, behind: [], mounts: 0, refusing: false }, B: null },
      keys: [{ seq: 1, issuedAt: Date.parse('2026-12-06T04:00:00Z'), command: 'ptp-shutdown', subjects: ['A', 'B'], mode: 'normal', reason: 'command', status: { A: 'out', B: 'out' }, current: [], state: 'offline', threshold: 2, acks: ['vtc1'], copiesPending: [], originVtc: 'vtc1', election: null }],
      lastElection: null,
      rejectedFrames: 0,
      rejectedMessages: 0,
      copyQueue: 0,
    };
    const doc = JSON.parse(JSON.stringify(statusJson(s, 'lab', 4))) as Record<string, unknown>;
    expect(Object.keys(doc).sort()).toEqual(
      ['configWarnings', 'copyQueue', 'format', 'keySeq', 'keys', 'lastElection', 'minSafeThreshold', 'nextSteps', 'ptp', 'ptpId', 'rejectedFrames', 'rejectedMessages', 'servingHosts', 'servingThrough', 'threshold', 'vtc', 'vts'].sort(),
    );
    expect(doc).toMatchObject({ format: 'ptpvts.status/1', servingHosts: false, servingThrough: [], vts: { A: { inOperation: true, servingHosts: false }, B: null } });
    expect((doc.keys as Record<string, unknown>[])[0]).toMatchObject({ seq: 1, issuedAt: '2026-12-06T04:00:00.000Z', note: null });
    expect((doc.nextSteps as string[])[0]).toMatch(/ptpvts ptp start/);
  });

  it('scenario run --json', async () => {
    const svg = join(dir, 'claim-7.svg');
    const { code, doc } = await json('scenario', 'run', 'claim-7', '--svg', svg, '--json');
    expect(code).toBe(0);
    expect(doc).toMatchObject({ format: 'ptpvts.scenario-run/1', name: 'claim-7', passed: true, error: null, svg });
    const steps = doc.steps as Record<string, unknown>[];
    expect(steps.length).toBeGreaterThan(0);
    expect(Object.keys(steps[0]!).sort()).toEqual(['atMs', 'detail', 'index', 'ms', 'ok', 'text']);
  }, 60_000);
});
