/**
 * Runs a scenario against a PtP system in this process (LocalCluster): each step in turn,
 * each expectation polled until it holds (then held for `hold` ms), and a clear diff of
 * expected against observed on the first mismatch. Every run yields a timeline (events)
 * that svg.ts draws.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { OperatorCommand } from '../ptp/engine.js';
import type { Mode, VtsName } from '../ptp/types.js';
import { codeOf } from '../vtc/errors.js';
import type { CloseResult, ElectionView, KeySummary } from '../vtc/agent.js';
import { LocalCluster } from './cluster.js';
import type { ClusterEvent, ClusterOptions } from './cluster.js';
import { LocalSystem, ProcessSystem } from './system.js';
import type { ScenarioSystem, VtcSnapshot } from './system.js';
import type { Expectation, ParsedScenario, Step } from './schema.js';

export class ScenarioMismatchError extends Error {
  override readonly name = 'ScenarioMismatchError';
  readonly code = 'ESCENARIO_MISMATCH';
  readonly step: number;
  readonly diff: readonly string[];
  constructor(scenario: string, step: number, what: string, diff: readonly string[]) {
    super(`scenario ${scenario}, step ${step + 1} (${what}) did not go as expected:\n${diff.map((d) => `  ${d}`).join('\n')}`);
    this.step = step;
    this.diff = diff;
  }
}

export interface StepReport {
  readonly index: number;
  readonly text: string;
  readonly ok: boolean;
  readonly at: number;
  readonly ms: number;
  readonly detail?: string;
}

export interface ScenarioResult {
  readonly name: string;
  readonly title: string;
  readonly passed: boolean;
  readonly steps: readonly StepReport[];
  readonly events: readonly ClusterEvent[];
  readonly vtcs: readonly string[];
  readonly error: ScenarioMismatchError | Error | null;
  readonly durationMs: number;
}

export interface RunOptions {
  /** Working directory (kept); default a temporary one, removed after the run. */
  readonly dir?: string;
  readonly logger?: Logger;
  /** Called after each step, for live output. */
  readonly onStep?: (s: StepReport) => void;
  /** Run against separate processes (one per VTS and per VTC) instead of in this process. */
  readonly processes?: boolean;
  /** In-process runs: a physical library behind each VTS for premigration (see ClusterOptions.library). */
  readonly library?: ClusterOptions['library'];
}

/** Plain-sentence text of one step. */
export function describeStep(s: Step): string {
  if ('say' in s) return s.say;
  if ('write' in s) return `host writes ${s.write.volser} through ${s.write.via ?? 'the first VTC'}${s.write.copyMode === undefined ? '' : ` (${s.write.copyMode} copy)`}${s.write.holdMs === undefined ? '' : `, keeping the mount in flight ${s.write.holdMs} ms`}${s.write.expectError === undefined ? '' : `, expecting ${s.write.expectError}`}`;
  if ('await-writes' in s) return 'the writes kept in flight end';
  if ('command' in s) {
    const c = s.command;
    const what = c.run === 'vts-out' ? `vts out ${c.vts ?? '?'} --mode ${c.mode ?? 'normal'}` : c.run === 'vts-in' ? `vts in ${c.vts ?? '?'}` : c.run === 'ptp-shutdown' ? `ptp shutdown --mode ${c.mode ?? 'normal'}` : c.run === 'threshold-set' ? `threshold set ${c.threshold ?? '?'}${c.mode === undefined ? '' : ` --mode ${c.mode}`}${c.belowHalf === true ? ' --force-below-half' : ''}` : c.run === 'override' ? `ptp override ${c.vts ?? '?'} (forced)` : 'ptp start';
    return `operator: ${what} via ${c.via ?? 'the first VTC'}${c.expectError === undefined ? '' : `, expecting ${c.expectError}`}`;
  }
  if ('crash-vts' in s) return `VTS ${s['crash-vts']} fails (crash)`;
  if ('restart-vts' in s) return `VTS ${s['restart-vts']} is restarted`;
  if ('crash-vtc' in s) return `VTC ${s['crash-vtc']} crashes`;
  if ('restart-vtc' in s) return `VTC ${s['restart-vtc']} restarts`;
  if ('partition' in s) return `network partition: ${s.partition.map((g) => `{${g.join(',')}}`).join(' | ')}`;
  if ('heal' in s) return 'network healed';
  if ('loss' in s) return `message loss ${Math.round(s.loss * 100)}% between VTCs`;
  if ('pause-copies' in s) return s['pause-copies'] ? 'copy queues paused' : 'copy queues resumed';
  if ('cut-vts-link' in s) return `${s['cut-vts-link'].vtcs.join(',')} lose their link to VTS ${s['cut-vts-link'].vts}`;
  if ('image-vts' in s) return `a backup image of VTS ${s['image-vts']}'s disks is taken`;
  if ('restore-vts' in s) return `VTS ${s['restore-vts']}'s disks are restored from the older backup image`;
  if ('wait' in s) return `wait ${s.wait} ms`;
  const e = s.expect;
  const parts: string[] = [];
  if (e.ptp !== undefined) parts.push(`PtP ${e.ptp}`);
  if (e.vtsIn !== undefined) parts.push(`VTS in operation {${e.vtsIn.join(',')}}`);
  if (e.current !== undefined) parts.push(`current {${e.current.join(',')}}`);
  if (e.keySeq !== undefined) parts.push(`newest key ${e.keySeq}`);
  if (e.threshold !== undefined) parts.push(`threshold ${e.threshold}`);
  if (e.election !== undefined) parts.push(`election on ${e.election.vts}: ${e.election.yes} yes${e.election.no === undefined ? '' : `, ${e.election.no} no`}`);
  if (e.ballots !== undefined) parts.push(`${e.ballots} ballot(s) since the last command`);
  if (e.readable !== undefined) parts.push(`readable ${Object.keys(e.readable).join(',')}`);
  if (e.unreadable !== undefined) parts.push(`not readable ${e.unreadable.join(',')}`);
  return `expect ${parts.join('; ')}${e.vtcs === undefined ? '' : ` on ${e.vtcs.join(',')}`}${e.hold > 0 ? `, holding ${e.hold} ms` : ''}`;
}

function toCommand(c: Extract<Step, { command: unknown }>['command']): OperatorCommand {
  const m = (c.mode ?? 'normal') as Mode;
  switch (c.run) {
    case 'vts-out':
      return { command: 'vts-out', vts: c.vts ?? '', mode: m };
    case 'vts-in':
      return { command: 'vts-in', vts: c.vts ?? '' };
    case 'ptp-shutdown':
      return { command: 'ptp-shutdown', mode: m };
    case 'ptp-start':
      return { command: 'ptp-start' };
    case 'threshold-set':
      return { command: 'threshold-set', threshold: c.threshold ?? NaN, ...(c.mode === undefined ? {} : { mode: m }), ...(c.belowHalf === undefined ? {} : { belowHalf: c.belowHalf }), ...(c.note === undefined ? {} : { note: c.note }) };
    case 'override':
      return { command: 'override', vts: c.vts ?? '', ...(c.note === undefined ? {} : { note: c.note }) };
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const sameSet = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && [...a].sort().join(',') === [...b].sort().join(',');

/** Checks an expectation once; returns the mismatches (empty: it holds). */
async function check(c: ScenarioSystem, e: Expectation, ballotsFrom: number): Promise<string[]> {
  const diff: string[] = [];
  const names = (e.vtcs ?? c.running()).filter((v) => c.running().includes(v));
  if (names.length === 0) return ['no listed VTC is running'];
  const snaps = await Promise.all(names.map(async (v) => [v, await c.snapshot(v)] as const));
  const list = (f: (s: VtcSnapshot) => string): string => snaps.map(([v, s]) => `${v}=${s === null ? 'unreachable' : f(s)}`).join(', ');
  const every = (f: (s: VtcSnapshot) => boolean): boolean => snaps.every(([, s]) => s !== null && f(s));
  if (e.ptp !== undefined && !every((s) => s.ptp === e.ptp)) diff.push(`PtP status: expected ${e.ptp} on every VTC, got ${list((s) => s.ptp)}`);
  if (e.keySeq !== undefined && !every((s) => s.keySeq === e.keySeq)) diff.push(`newest key: expected ${e.keySeq}, got ${list((s) => String(s.keySeq))}`);
  if (e.current !== undefined && !every((s) => sameSet(s.current, e.current!))) diff.push(`current: expected {${e.current.join(',')}}, got ${list((s) => `{${s.current.join(',')}}`)}`);
  if (e.threshold !== undefined && !every((s) => s.threshold === e.threshold)) diff.push(`threshold: expected ${e.threshold}, got ${list((s) => String(s.threshold))}`);
  if (e.vtsIn !== undefined) {
    const inOp = await c.vtsIn();
    if (!sameSet(inOp, e.vtsIn)) diff.push(`VTS in operation: expected {${e.vtsIn.join(',')}}, got {${inOp.join(',')}}`);
  }
  const first = names[0]!;
  if (e.election !== undefined) {
    // Elections that do not pass are held again in new rounds; judge the newest one every running
    // VTC voted in. Each VTC sees the ballots that reached it (an election held in a key's phase 1
    // sends them to the coordinator and in the commit), so the views are merged.
    const merged = new Map<string, { id: ElectionView['id']; ballots: Map<string, ElectionView['ballots'][number]> }>();
    for (const [, s] of snaps) {
      for (const x of s?.elections ?? []) {
        const k = `${x.id.seq}:${x.id.vts}:${x.id.round}`;
        let m = merged.get(k);
        if (m === undefined) merged.set(k, (m = { id: x.id, ballots: new Map() }));
        for (const b of x.ballots) if (!m.ballots.has(b.voter)) m.ballots.set(b.voter, b);
      }
    }
    const all = [...merged.values()].map((m) => ({ id: m.id, ballots: [...m.ballots.values()] })).sort((a, b) => a.id.seq - b.id.seq || a.id.round - b.id.round);
    const complete = all.filter((x) => x.ballots.length >= c.running().length);
    const el = complete.at(-1) ?? all.at(-1) ?? null;
    const yes = el?.ballots.filter((b) => b.choice === 'yes').length ?? 0;
    const no = el?.ballots.filter((b) => b.choice === 'no').length ?? 0;
    if (el === null || el.id.vts !== e.election.vts || yes !== e.election.yes || (e.election.no !== undefined && no !== e.election.no)) {
      diff.push(
        `newest complete election as ${names.join(',')} saw it: expected on ${e.election.vts} ${e.election.yes} yes${e.election.no === undefined ? '' : ` ${e.election.no} no`}, got ${el === null ? 'no election' : `on ${el.id.vts} (key ${el.id.seq}, round ${el.id.round}) ${yes} yes ${no} no [${el.ballots.map((b) => `${b.voter}:${b.choice}`).join(' ')}]`}`,
      );
    }
  }
  if (e.ballots !== undefined) {
    const n = c.events.filter((ev, i) => i >= ballotsFrom && ev.kind === 'ballot' && ev.vtc === ev.ballot.voter).length;
    if (n !== e.ballots) diff.push(`ballots since the last command: expected ${e.ballots}, got ${n}`);
  }
  for (const [vol, text] of Object.entries(e.readable ?? {})) {
    try {
      const r = await c.read(first, vol);
      const got = Buffer.from(r.data).toString('utf8');
      if (got !== text) diff.push(`${vol} through ${first}: expected "${text}", read "${got}" from VTS ${r.vts}`);
    } catch (err) {
      diff.push(`${vol} through ${first}: expected "${text}", the read failed: ${(err as Error).message}`);
    }
  }
  for (const vol of e.unreadable ?? []) {
    try {
      const r = await c.read(first, vol);
      diff.push(`${vol} through ${first}: expected the read to be refused, it returned ${r.data.length} bytes from VTS ${r.vts}`);
    } catch {
      // Refused, as expected.
    }
  }
  return diff;
}

const waitFor = async (pred: () => Promise<boolean>, ms: number): Promise<boolean> => {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return true;
    await sleep(20);
  }
  return pred();
};

const keyText = (k: KeySummary): string =>
  `key ${k.seq}: ${k.state}, current {${k.current.join(',')}}, ${k.acks.length} ack(s)${k.copiesPending !== null && k.copiesPending.length > 0 ? `, pending copies ${k.copiesPending.join(',')}` : ''}`;

/** Runs a scenario in this process, or against separate processes. Never throws for a mismatch: the result says `passed: false` with the diff. */
export async function runScenario(s: ParsedScenario, o: RunOptions = {}): Promise<ScenarioResult> {
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), `ptpvts-scenario-${s.name}-`));
  const started = Date.now();
  const steps: StepReport[] = [];
  let sys: ScenarioSystem | null = null;
  let error: ScenarioMismatchError | Error | null = null;
  let ballotsFrom = 0;
  const inFlight: { step: number; volser: string; expectError: string | undefined; done: Promise<CloseResult> }[] = [];
  try {
    sys = o.processes === true
      ? await ProcessSystem.start({ n: s.vtcs, dir, copyMode: s.copyMode })
      : new LocalSystem(await LocalCluster.start({ n: s.vtcs, dir, copyMode: s.copyMode, ...(o.logger === undefined ? {} : { logger: o.logger }), ...(o.library === undefined ? {} : { library: o.library }) }));
    const c = sys;
    const allOnline = async (): Promise<boolean> => (await Promise.all(c.running().map((v) => c.snapshot(v)))).every((x) => x?.ptp === 'online-both');
    // Every scenario starts from a settled system: on-line with both VTS.
    if (!(await waitFor(allOnline, 15_000))) throw new Error('the PtP system did not come on-line at start');
    for (let i = 0; i < s.steps.length; i++) {
      const step = s.steps[i]!;
      const text = describeStep(step);
      const t0 = Date.now();
      c.note(text);
      const fail = (diff: string[]): never => {
        throw new ScenarioMismatchError(s.name, i, text, diff);
      };
      let detail: string | undefined;
      if ('write' in step && step.write.holdMs !== undefined) {
        const w = step.write;
        if (c.writeHeld === undefined) throw new Error(`step ${i + 1}: a write kept in flight (holdMs) runs only in this process, not with --processes`);
        const held = c.writeHeld(w.via, w.volser, Buffer.from(w.data, 'utf8'), w.holdMs ?? 0, w.copyMode);
        try {
          await held.mounted;
        } catch (e) {
          fail([`write: the mount of ${w.volser} failed: ${codeOf(e)}: ${(e as Error).message}`]);
        }
        inFlight.push({ step: i, volser: w.volser, expectError: w.expectError, done: held.done });
        detail = `mounted, first half written; held ${w.holdMs} ms`;
      } else if ('await-writes' in step) {
        const diff: string[] = [];
        const outcomes: string[] = [];
        for (const f of inFlight.splice(0)) {
          try {
            const r = await f.done;
            if (f.expectError !== undefined) diff.push(`write of ${f.volser} (step ${f.step + 1}): expected error ${f.expectError}, it was acknowledged (generation ${r.generation})`);
            outcomes.push(`${f.volser} acknowledged on ${r.copies.join('+')}`);
          } catch (e) {
            if (f.expectError === undefined || codeOf(e) !== f.expectError) diff.push(`write of ${f.volser} (step ${f.step + 1}): expected ${f.expectError === undefined ? 'success' : `error ${f.expectError}`}, got ${codeOf(e)}: ${(e as Error).message}`);
            outcomes.push(`${f.volser} refused: ${codeOf(e)}`);
          }
        }
        if (diff.length > 0) fail(diff);
        detail = outcomes.join('; ');
      } else if ('write' in step) {
        const w = step.write;
        try {
          const r = await c.write(w.via, w.volser, Buffer.from(w.data, 'utf8'), w.copyMode);
          if (w.expectError !== undefined) fail([`write: expected error ${w.expectError}, it was acknowledged (generation ${r.generation})`]);
          detail = `acknowledged, generation ${r.generation}, on ${r.copies.join('+')}${r.queued.length > 0 ? `, copy to ${r.queued.join(',')} queued` : ''}`;
        } catch (e) {
          if (e instanceof ScenarioMismatchError) throw e;
          if (w.expectError === undefined || codeOf(e) !== w.expectError) fail([`write: expected ${w.expectError === undefined ? 'success' : `error ${w.expectError}`}, got ${codeOf(e)}: ${(e as Error).message}`]);
          detail = `refused as expected: ${(e as Error).message}`;
        }
      } else if ('command' in step) {
        ballotsFrom = c.events.length;
        const cmd = step.command;
        try {
          let k: KeySummary | undefined;
          for (let attempt = 0; k === undefined; attempt++) {
            try {
              k = await c.command(cmd.via, toCommand(cmd));
            } catch (e) {
              // A conflict with a key other VTCs are forming is transient and says so ("retry
              // the command"): an operator retries it, so the runner does a few times even
              // when the step names no retries, unless the step expects the conflict.
              const conflict = codeOf(e) === 'EPTP_CONFLICT' && cmd.expectError !== 'EPTP_CONFLICT';
              const retryable = codeOf(e) === 'EPTP_NO_QUORUM' || conflict;
              if (!retryable || attempt >= (conflict ? Math.max(cmd.retries, 3) : cmd.retries)) throw e;
              await sleep(300);
            }
          }
          if (cmd.expectError !== undefined) fail([`command: expected error ${cmd.expectError}, it succeeded as key ${k.seq}`]);
          // The coordinator answers once it committed; give the VTCs it can reach a moment to learn the key too.
          const seq = k.seq;
          const peers = c.reachable(cmd.via ?? c.running()[0] ?? '');
          await waitFor(async () => (await Promise.all(peers.map((v) => c.snapshot(v)))).every((x) => x === null || x.keySeq >= seq), 3000);
          detail = keyText(k);
        } catch (e) {
          if (e instanceof ScenarioMismatchError) throw e;
          if (cmd.expectError === undefined || codeOf(e) !== cmd.expectError) fail([`command: expected ${cmd.expectError === undefined ? 'success' : `error ${cmd.expectError}`}, got ${codeOf(e)}: ${(e as Error).message}`]);
          detail = `refused as expected: ${(e as Error).message}`;
        }
      } else if ('crash-vts' in step) await c.crashVts(step['crash-vts']);
      else if ('restart-vts' in step) await c.restartVts(step['restart-vts']);
      else if ('crash-vtc' in step) await c.crashVtc(step['crash-vtc']);
      else if ('restart-vtc' in step) await c.restartVtc(step['restart-vtc']);
      else if ('partition' in step) await c.partition(step.partition);
      else if ('heal' in step) await c.heal();
      else if ('loss' in step) await c.setLoss(step.loss);
      else if ('pause-copies' in step) await c.pauseCopies(step['pause-copies']);
      else if ('cut-vts-link' in step || 'image-vts' in step || 'restore-vts' in step) {
        if (c.vtsFaults === undefined) throw new Error(`step ${i + 1}: VTS link cuts and disk images run only in this process, not with --processes`);
        if ('cut-vts-link' in step) c.vtsFaults.cutVtsLinks(step['cut-vts-link'].vtcs, step['cut-vts-link'].vts);
        else if ('image-vts' in step) c.vtsFaults.imageVts(step['image-vts']);
        else c.vtsFaults.restoreVts(step['restore-vts']);
      }
      else if ('wait' in step) await sleep(step.wait);
      else if ('expect' in step) {
        const e = step.expect;
        const end = Date.now() + e.within;
        let diff = await check(c, e, ballotsFrom);
        while (diff.length > 0 && Date.now() < end) {
          await sleep(25);
          diff = await check(c, e, ballotsFrom);
        }
        if (diff.length > 0) fail(diff);
        const holdEnd = Date.now() + e.hold;
        while (Date.now() < holdEnd) {
          await sleep(50);
          diff = await check(c, e, ballotsFrom);
          if (diff.length > 0) fail(diff.map((d) => `after holding ${e.hold - (holdEnd - Date.now())} ms: ${d}`));
        }
      }
      const rep: StepReport = { index: i, text, ok: true, at: t0 - c.t0, ms: Date.now() - t0, ...(detail === undefined ? {} : { detail }) };
      steps.push(rep);
      o.onStep?.(rep);
    }
  } catch (e) {
    error = e instanceof Error ? e : new Error(String(e));
    if (e instanceof ScenarioMismatchError) {
      const rep: StepReport = { index: e.step, text: describeStep(s.steps[e.step]!), ok: false, at: Date.now() - (sys?.t0 ?? started), ms: 0, detail: e.diff.join('; ') };
      steps.push(rep);
      o.onStep?.(rep);
    }
  } finally {
    await sys?.stop();
    if (o.dir === undefined) rmSync(dir, { recursive: true, force: true });
  }
  return { name: s.name, title: s.title, passed: error === null, steps, events: sys?.events ?? [], vtcs: sys?.names ?? [], error, durationMs: Date.now() - started };
}

export type { VtsName };
