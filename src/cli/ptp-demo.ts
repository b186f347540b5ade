/**
 * The PtP part of `ptpvts demo`: the claim 1 and claim 7 recovery stories on a PtP system
 * in this process (four VTCs, two VTS, real TCP and key journals), told in plain
 * sentences, with an SVG timeline of each written to `dir`.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { builtinScenario } from '../scenario/builtins.js';
import { runScenario } from '../scenario/runner.js';
import type { ScenarioResult } from '../scenario/runner.js';
import { timelineSvg } from '../scenario/svg.js';
import type { VtsName } from '../ptp/types.js';
import type { VtsLibraryOptions } from '../vts/index.js';
import { defaultLibraryYaml } from './default-lab.js';
import { openEmbeddedLab } from './lab.js';
import type { Lab } from './lab.js';
import type { Out } from './output.js';

/** Prints what happened in a run: steps with their outcome, then each key and the last election. */
export function tellScenario(out: Out, r: ScenarioResult): void {
  out.line(`${r.title}.`);
  for (const s of r.steps) {
    const when = `${(s.at / 1000).toFixed(2)} s`;
    const text = s.text.startsWith('expect ') ? `${s.ok ? 'Checked' : 'Expected'}: ${s.text.slice(7)}` : `${s.text.charAt(0).toUpperCase()}${s.text.slice(1)}`;
    out.line(`  [${when}] ${s.ok ? '' : 'MISMATCH: '}${text}${s.detail === undefined ? '.' : `: ${s.detail}.`}`);
  }
  const keys = new Map<number, string>();
  for (const e of r.events) {
    if (e.kind === 'key' && !keys.has(e.key.seq)) {
      keys.set(e.key.seq, `  Key ${e.key.seq} (${e.key.command}${e.key.subjects.length === 1 ? ` ${e.key.subjects[0]}` : ''}, ${e.key.mode}, ${e.key.reason}) put the PtP system ${e.key.state} with current {${e.key.current.join(',')}}, acknowledged by ${e.key.acks.length} VTC(s).`);
    }
  }
  if (keys.size > 0) out.line('Shutdown keys, in order:');
  for (const k of [...keys.keys()].sort((a, b) => a - b)) out.line(keys.get(k) ?? '');
  const ballots = r.events.filter((e) => e.kind === 'ballot' && e.vtc === e.ballot.voter);
  const byElection = new Map<string, string[]>();
  for (const e of ballots) {
    if (e.kind !== 'ballot') continue;
    const id = `placing ${e.ballot.election.vts} on-line (key ${e.ballot.election.seq}, round ${e.ballot.election.round})`;
    const l = byElection.get(id) ?? [];
    l.push(`${e.ballot.voter} ${e.ballot.choice}`);
    byElection.set(id, l);
  }
  if (byElection.size === 0) out.line('No election was held.');
  // Ballots arrive in whatever order the VTCs cast them: listed by VTC, so the story reads the same every run.
  for (const [id, l] of byElection) out.line(`  Election on ${id}: ${l.sort((a, b) => a.localeCompare(b, 'en', { numeric: true })).join(', ')}.`);
  out.line(r.passed ? `The story ended as the claims say, in ${(r.durationMs / 1000).toFixed(1)} s.` : `The story did NOT end as expected: ${r.error?.message ?? ''}`);
}

/** Volumes whose metadata names a tape copy. */
function premigrated(metaDir: string): number {
  if (!existsSync(metaDir)) return 0;
  return readdirSync(metaDir).filter((f) => {
    try {
      return (JSON.parse(readFileSync(join(metaDir, f), 'utf8')) as { premigrated?: unknown }).premigrated != null;
    } catch {
      return false;
    }
  }).length;
}

/**
 * Runs the claim 1 and claim 7 stories, each VTS premigrating its closed volumes to an
 * emulated library of its own; writes `claim-1.svg` and `claim-7.svg` into `dir`.
 * Resolves false if a story went wrong.
 */
export async function runPtpDemo(out: Out, dir: string): Promise<boolean> {
  mkdirSync(dir, { recursive: true });
  let ok = true;
  out.line('PtP recovery: four VTCs and two VTS (A and B) in this process, over TCP on 127.0.0.1, with durable key journals;');
  out.line('each VTS premigrates closed volumes to its own emulated library (two LTO-8 drives, mechanical delays off).');
  for (const name of ['claim-1', 'claim-7']) {
    const s = builtinScenario(name);
    if (s === undefined) continue;
    out.line('');
    const labs: Lab[] = [];
    const library = async (x: VtsName): Promise<VtsLibraryOptions> => {
      const libDir = join(dir, name, `library-${x}`);
      mkdirSync(libDir, { recursive: true });
      const yaml = join(libDir, 'library.yaml');
      writeFileSync(yaml, defaultLibraryYaml(`lib${x}`));
      const lab = await openEmbeddedLab(yaml, { timeScale: 0, persist: false });
      labs.push(lab);
      // WORM and write-protected cartridges are left out; the VTS labels the rest as its own.
      return { changer: lab.changer, drives: lab.drives, cartridges: ['LAB001L8', 'LAB002L8', 'LAB003L8', 'LAB004L8'], retryDelayMs: 0 };
    };
    let r;
    try {
      r = await runScenario(s, { library, dir: join(dir, name, 'system') });
    } finally {
      for (const lab of labs) await lab.close();
    }
    tellScenario(out, r);
    for (const x of ['A', 'B'] as const) out.line(`VTS ${x} premigrated ${premigrated(join(dir, name, 'system', `vts-${x}`, 'cache', 'meta'))} volume(s) to its emulated library.`);
    const svg = join(dir, `${name}.svg`);
    writeFileSync(svg, timelineSvg(r));
    ok &&= r.passed;
  }
  return ok;
}
