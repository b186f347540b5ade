/**
 * `ptpvts status` for an operator: whether the PtP system serves hosts, kept apart from each
 * VTS's own state (a VTS in operation does not serve hosts while the system is off-line),
 * every key with its time, and, when hosts are not served, the next step the operator can
 * take. The same view is printed in sentences or as JSON of a documented, stable shape
 * (docs/json.md).
 */
import { minSafeThreshold } from '../ptp/rules.js';
import { VTS_NAMES } from '../ptp/types.js';
import type { VtsName } from '../ptp/types.js';
import type { AgentStatus, KeySummary } from '../vtc/agent.js';
import type { Out } from './output.js';

/** What an operator needs to know beyond the raw status. */
export interface OperatorView {
  /** True while hosts can mount volumes (PtP on-line with one or both VTS, or resyncing). */
  readonly servingHosts: boolean;
  /** The VTS that serve hosts now (empty when off-line). */
  readonly servingThrough: readonly VtsName[];
  /** The newest key, when the VTC knows it (what put the system in its state). */
  readonly newestKey: KeySummary | null;
  /** Sentences, each naming a command, for what the operator can do now; empty when nothing is needed. */
  readonly nextSteps: readonly string[];
}

/** The VTS that serve hosts in PtP state `ptp` (as the VTC formats it: `online-both`, `online-single(A)`, `resync(A->B)`, `offline`). */
export function servingThrough(ptp: string): VtsName[] {
  if (ptp === 'online-both' || ptp.startsWith('resync')) return ['A', 'B'];
  const single = /^online-single\(([AB])\)$/.exec(ptp);
  return single ? [single[1] as VtsName] : [];
}

/** A key's issue time as ISO 8601, or undefined for the genesis key or a VTC that does not say. */
export function keyTime(k: KeySummary): string | undefined {
  return typeof k.issuedAt === 'number' && k.issuedAt > 0 ? new Date(k.issuedAt).toISOString() : undefined;
}

const list = (xs: readonly string[]): string => (xs.length <= 1 ? (xs[0] ?? '') : `${xs.slice(0, -1).join(', ')} and ${xs.at(-1) ?? ''}`);

/** Derives the operator's view from one VTC's status; `topologyArg` (e.g. `-t topo.yaml`) goes into the commands it advises. */
export function operatorView(s: AgentStatus, topologyArg = ''): OperatorView {
  const through = servingThrough(s.ptp);
  const newest = s.keys.at(-1);
  const newestKey = newest !== undefined && newest.seq === s.keySeq ? newest : null;
  const t = topologyArg === '' ? '' : ` ${topologyArg}`;
  const steps: string[] = [];
  if (through.length === 0) {
    if (newestKey?.command === 'ptp-shutdown') {
      steps.push(`The PtP system was shut down by key ${newestKey.seq}: \`ptpvts ptp start${t}\` puts both VTS back in operation (on-line with both, no vote).`);
    } else {
      const current = newestKey?.current ?? [];
      const stale = VTS_NAMES.filter((x) => !current.includes(x));
      for (const x of current) {
        const v = s.vts[x];
        if (v === null) steps.push(`VTS ${x} holds the newest data and is not answering: bring it back (start its process, \`ptpvts vts${t} --id ${x}\`), then \`ptpvts vts in ${x}${t}\` if it is still out of operation.`);
        else if (!v.inOperation) steps.push(`VTS ${x} holds the newest data and is out of operation: \`ptpvts vts in ${x}${t}\` puts it back.`);
      }
      for (const x of stale) {
        const v = s.vts[x];
        if (current.length > 0 && v !== null && v.inOperation) {
          steps.push(
            `VTS ${x} alone stays off-line: it missed what only ${list(current.map((c) => `VTS ${c}`))} holds (current {${current.join(',')}}), so the VTCs vote no.`,
          );
        }
      }
      if (current.length === 0) steps.push(`Neither VTS is current: bring both back and \`ptpvts ptp start${t}\`.`);
      const candidate = stale.find((x) => s.vts[x]?.inOperation === true) ?? stale.find((x) => s.vts[x] !== null);
      if (candidate !== undefined && current.length > 0) {
        steps.push(
          `Or, accepting that volumes written only to ${list(current.map((c) => `VTS ${c}`))} are not served, the audited override \`ptpvts ptp override ${candidate}${t}\` places VTS ${candidate} on-line alone without an election (recorded in a key of its own).`,
        );
      }
    }
  } else if (through.length === 1) {
    const other = VTS_NAMES.find((x) => x !== through[0]);
    if (other !== undefined && s.vts[other]?.inOperation !== true) steps.push(`Only VTS ${through[0] ?? ''} serves hosts: when VTS ${other} is back, \`ptpvts vts in ${other}${t}\` returns it (it catches up from VTS ${through[0] ?? ''}).`);
  }
  return { servingHosts: through.length > 0, servingThrough: through, newestKey, nextSteps: steps };
}

/** One key in a sentence, with the time it was issued. */
export function describeKey(k: KeySummary): string {
  const subj = k.subjects.length === 1 ? ` ${k.subjects[0]}` : '';
  const pending = k.copiesPending === null ? 'pending copies unknown' : `${k.copiesPending.length} cop${k.copiesPending.length === 1 ? 'y' : 'ies'} pending`;
  const at = keyTime(k);
  return `key ${k.seq}: ${k.command}${subj} (${k.mode}, ${k.reason}) from ${k.originVtc || 'genesis'}: PtP ${k.state}, current {${k.current.join(',')}}, threshold ${k.threshold}, acknowledged by ${k.acks.length} VTC(s), ${pending}${k.election === null ? '' : `, ${k.election.vts} elected by ${k.election.yes.join(',')}`}${k.note === undefined ? '' : `, operator's reason: "${k.note}"`}${at === undefined ? '' : `, issued ${at}`}`;
}

/** Prints a VTC's view of the PtP system in plain sentences; `n` (the number of VTCs) lets it flag a threshold below floor(n/2). */
export function printStatus(out: Out, s: AgentStatus, ptpId: string, n?: number, topologyArg = ''): void {
  const view = operatorView(s, topologyArg);
  out.line(`PtP system ${ptpId} as ${s.vtc} sees it: ${s.ptp}, newest key ${s.keySeq}, VTC agreement threshold ${s.threshold}.`);
  if (n !== undefined && s.threshold < minSafeThreshold(n)) {
    const set = [...s.keys].reverse().find((k) => k.command === 'threshold-set' && k.threshold === s.threshold);
    out.line(
      `WARNING: the threshold ${s.threshold} is below floor(n/2) = ${minSafeThreshold(n)} for ${n} VTCs: two groups of ${s.threshold + 1} VTC(s) can each commit a key (split brain). ` +
        (set === undefined ? 'It was set by an audited override.' : `Set by key ${set.seq} from ${set.originVtc}, an audited override${set.note === undefined ? '' : ` with the reason "${set.note}"`}.`),
    );
  }
  for (const w of s.configWarnings ?? []) out.line(`Configuration mismatch: ${w}.`);
  const k = view.newestKey;
  const since = k === null ? '' : ` since key ${k.seq} (${k.command}${k.subjects.length === 1 ? ` ${k.subjects[0] ?? ''}` : ''}${keyTime(k) === undefined ? '' : `, ${keyTime(k) ?? ''}`})`;
  if (view.servingHosts) out.line(`Serving hosts: yes, through ${view.servingThrough.length === 2 ? 'VTS A and B' : `VTS ${view.servingThrough[0] ?? ''} alone`}${since}.`);
  else out.line(`Serving hosts: no, the PtP system is off-line${since}.`);
  for (const x of VTS_NAMES) {
    const v = s.vts[x];
    if (v === null) out.line(`VTS ${x}: not answering.`);
    else {
      // A VTS's own "in operation" is not service to hosts: say so where the two differ.
      const idle = v.inOperation && !view.servingThrough.includes(x) ? `, not serving hosts (PtP ${s.ptp})` : '';
      out.line(`VTS ${x}: ${v.inOperation ? 'in operation' : 'out of operation'}, last key seq ${v.lastKeySeq}, ${v.behind.length} volume(s) behind the other VTS, ${v.mounts} mount(s)${v.refusing ? ', refusing new mounts' : ''}${idle}.`);
    }
  }
  if (s.keys.length === 0) out.line('No shutdown key yet: both VTS in operation since the start.');
  else {
    out.line('Shutdown keys (newest last):');
    for (const key of s.keys) out.line(`  ${describeKey(key)}.`);
  }
  const e = s.lastElection;
  if (e === null) out.line('No election seen yet.');
  else {
    const yes = e.ballots.filter((b) => b.choice === 'yes').length;
    out.line(`Last election: placing ${e.id.vts} on-line after key ${e.id.seq} (round ${e.id.round}): ${yes} yes, ${e.ballots.length - yes} no; it passes only with more than ${s.threshold} yes.`);
    for (const b of e.ballots) out.line(`  ${b.voter} voted ${b.choice} with key ${b.keySeq}: ${b.why}.`);
  }
  for (const step of view.nextSteps) out.line(`Next step: ${step}`);
  out.line(`Rejected frames: ${s.rejectedFrames}; rejected messages: ${s.rejectedMessages}; copies queued: ${s.copyQueue}.`);
}

/** The `--json` shape of `ptpvts status` (format `ptpvts.status/1`, docs/json.md). */
export function statusJson(s: AgentStatus, ptpId: string, n: number, topologyArg = ''): Record<string, unknown> & { readonly format: 'ptpvts.status/1' } {
  const view = operatorView(s, topologyArg);
  return {
    format: 'ptpvts.status/1' as const,
    ptpId,
    vtc: s.vtc,
    ptp: s.ptp,
    servingHosts: view.servingHosts,
    servingThrough: view.servingThrough,
    keySeq: s.keySeq,
    threshold: s.threshold,
    minSafeThreshold: minSafeThreshold(n),
    vts: Object.fromEntries(
      VTS_NAMES.map((x) => {
        const v = s.vts[x];
        return [x, v === null ? null : { inOperation: v.inOperation, servingHosts: view.servingThrough.includes(x), lastKeySeq: v.lastKeySeq, behind: v.behind, mounts: v.mounts, refusing: v.refusing }];
      }),
    ),
    keys: s.keys.map((k) => ({ ...k, issuedAt: keyTime(k) ?? null, note: k.note ?? null })),
    lastElection: s.lastElection,
    nextSteps: view.nextSteps,
    configWarnings: s.configWarnings ?? [],
    rejectedFrames: s.rejectedFrames,
    rejectedMessages: s.rejectedMessages,
    copyQueue: s.copyQueue,
  };
}
