/**
 * The SVG timeline of a scenario run: one band per VTS (in operation, out, down), one per
 * VTC (its PtP status, with its ballots as dots: filled yes, hollow no), the keys as
 * ticks, and the numbered steps with their text underneath. Hand-written SVG, no library.
 */
import type { ClusterEvent } from './cluster.js';
import type { StepReport } from './runner.js';

const COLORS: Record<string, string> = {
  'online-both': '#2e7d32',
  'online-single': '#81c784',
  resync: '#fbc02d',
  offline: '#c62828',
  in: '#1565c0',
  out: '#9e9e9e',
  down: '#212121',
  unknown: '#eeeeee',
};

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

interface Band {
  from: number;
  to: number;
  color: string;
  label: string;
}

function bands(points: { t: number; state: string; color: string }[], end: number): Band[] {
  const out: Band[] = [];
  points.forEach((p, i) => {
    const next = points[i + 1];
    const to = next === undefined ? end : next.t;
    if (to > p.t) out.push({ from: p.t, to, color: p.color, label: p.state });
  });
  return out;
}

export interface TimelineInput {
  readonly title: string;
  readonly vtcs: readonly string[];
  readonly events: readonly ClusterEvent[];
  readonly steps: readonly StepReport[];
  readonly passed: boolean;
}

/** Renders the timeline as a standalone SVG document. */
export function timelineSvg(r: TimelineInput): string {
  const end = Math.max(1, ...r.events.map((e) => e.t), ...r.steps.map((s) => s.at + s.ms)) + 50;
  const left = 110;
  const width = 1100;
  const plot = width - left - 20;
  const x = (t: number): number => left + (t / end) * plot;
  const rowH = 22;
  const top = 60;
  const rows: string[] = [];
  const lanes: { name: string; bands: Band[]; marks: string[] }[] = [];

  for (const v of ['A', 'B'] as const) {
    const pts: { t: number; state: string; color: string }[] = [{ t: 0, state: 'in', color: COLORS.in! }];
    for (const e of r.events) {
      if (e.kind === 'vts' && e.view.name === v && e.vtc === (r.vtcs[0] ?? '')) pts.push({ t: e.t, state: e.view.inOperation ? 'in' : 'out', color: e.view.inOperation ? COLORS.in! : COLORS.out! });
      if (e.kind === 'vts-host' && e.vts === v) pts.push({ t: e.t, state: e.up ? 'restarted' : 'down', color: e.up ? COLORS.in! : COLORS.down! });
    }
    pts.sort((a, b) => a.t - b.t);
    lanes.push({ name: `VTS ${v}`, bands: bands(pts, end), marks: [] });
  }
  for (const name of r.vtcs) {
    const pts: { t: number; state: string; color: string }[] = [];
    const marks: string[] = [];
    for (const e of r.events) {
      if (e.kind === 'status' && e.vtc === name) {
        const label = e.status.kind === 'online-single' ? `online-single(${e.status.vts})` : e.status.kind === 'resync' ? `resync(${e.status.from}->${e.status.to})` : e.status.kind;
        pts.push({ t: e.t, state: label, color: COLORS[e.status.kind] ?? COLORS.unknown! });
      }
      if (e.kind === 'ballot' && e.vtc === name && e.ballot.voter === name) {
        const yes = e.ballot.choice === 'yes';
        marks.push(
          `<circle cx="${x(e.t).toFixed(1)}" cy="{Y}" r="5" fill="${yes ? '#000000' : '#ffffff'}" stroke="#000" stroke-width="1.5"><title>${esc(`${name} votes ${e.ballot.choice} on ${e.ballot.election.vts} (key ${e.ballot.election.seq}, round ${e.ballot.election.round}): ${e.ballot.why}`)}</title></circle>`,
        );
      }
    }
    if (pts.length === 0 || (pts[0]?.t ?? 0) > 0) pts.unshift({ t: 0, state: 'starting', color: COLORS.unknown! });
    lanes.push({ name, bands: bands(pts, end), marks });
  }

  lanes.forEach((lane, i) => {
    const y = top + i * rowH;
    rows.push(`<text x="8" y="${y + 15}" font-size="12">${esc(lane.name)}</text>`);
    for (const b of lane.bands) {
      rows.push(`<rect x="${x(b.from).toFixed(1)}" y="${y + 3}" width="${Math.max(0.5, x(b.to) - x(b.from)).toFixed(1)}" height="${rowH - 6}" fill="${b.color}"><title>${esc(`${lane.name}: ${b.label} from ${Math.round(b.from)} ms to ${Math.round(b.to)} ms`)}</title></rect>`);
    }
    for (const m of lane.marks) rows.push(m.replace('{Y}', String(y + rowH / 2)));
  });

  const keysY = top + lanes.length * rowH + 8;
  rows.push(`<text x="8" y="${keysY + 14}" font-size="12">keys</text>`);
  const seen = new Set<number>();
  let k = 0;
  for (const e of r.events) {
    if (e.kind !== 'key' || seen.has(e.key.seq)) continue;
    seen.add(e.key.seq);
    const kx = x(e.t);
    const label = `${e.key.seq}: ${e.key.command}${e.key.subjects.length === 1 ? ` ${e.key.subjects[0]}` : ''} ${e.key.mode === 'normal' ? '' : e.key.mode} → ${e.key.state}`;
    rows.push(`<line x1="${kx.toFixed(1)}" y1="${top}" x2="${kx.toFixed(1)}" y2="${keysY + 4}" stroke="#6a1b9a" stroke-dasharray="2,3"/>`);
    rows.push(`<text x="${(kx + 2).toFixed(1)}" y="${keysY + 14 + (k % 3) * 12}" font-size="10" fill="#6a1b9a"><title>${esc(`key ${e.key.seq} ${e.key.command} [${e.key.subjects.join(',')}] ${e.key.mode} (${e.key.reason}) current {${e.key.current.join(',')}} acks ${e.key.acks.join(',')}`)}</title>k${esc(label)}</text>`);
    k++;
  }

  const stepsY = keysY + 52;
  rows.push(`<text x="8" y="${stepsY + 4}" font-size="12">steps</text>`);
  r.steps.forEach((s, i) => {
    const sx = x(s.at);
    rows.push(`<circle cx="${sx.toFixed(1)}" cy="${stepsY}" r="7" fill="${s.ok ? '#fff' : '#ffcdd2'}" stroke="#333"/><text x="${sx.toFixed(1)}" y="${stepsY + 4}" font-size="9" text-anchor="middle">${s.index + 1}</text>`);
    rows.push(`<text x="${left}" y="${stepsY + 26 + i * 14}" font-size="11" fill="${s.ok ? '#000' : '#b71c1c'}">${s.index + 1}. ${esc(s.text)}${s.detail === undefined ? '' : ` — ${esc(s.detail)}`} (${Math.round(s.at)} ms)</text>`);
  });
  const height = stepsY + 40 + r.steps.length * 14;
  const axis: string[] = [];
  const stepMs = end > 20_000 ? 5000 : end > 5000 ? 1000 : end > 2000 ? 500 : 100;
  for (let t = 0; t <= end; t += stepMs) axis.push(`<line x1="${x(t).toFixed(1)}" y1="${top - 4}" x2="${x(t).toFixed(1)}" y2="${top}" stroke="#555"/><text x="${x(t).toFixed(1)}" y="${top - 8}" font-size="9" text-anchor="middle">${t >= 1000 ? `${t / 1000}s` : `${t}ms`}</text>`);
  const legend = ['online-both', 'online-single', 'resync', 'offline', 'in', 'out', 'down']
    .map((n, i) => `<rect x="${left + i * 120}" y="24" width="12" height="10" fill="${COLORS[n]}"/><text x="${left + i * 120 + 16}" y="33" font-size="10">${n === 'in' ? 'VTS in operation' : n === 'out' ? 'VTS out' : n === 'down' ? 'VTS down (crash)' : n}</text>`)
    .join('');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="8" y="16" font-size="14" font-weight="bold">${esc(r.title)} — ${r.passed ? 'passed' : 'FAILED'}</text>`,
    legend,
    `<text x="${width - 250}" y="33" font-size="10">ballots: ● yes  ○ no (hover for why)</text>`,
    ...axis,
    ...rows,
    '</svg>',
    '',
  ].join('\n');
}
