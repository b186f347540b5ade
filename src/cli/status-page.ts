/**
 * The web status page of a PtP system, served by a VTC (`ptpvts vtc --http HOST:PORT`): the
 * VTCs (each one's PtP state, newest key and threshold, asked over the control endpoint as
 * this VTC), both VTS as this VTC sees them, whether hosts are served, the keys with their
 * times, the last election with its ballots, the next steps an operator can take, and the
 * SVG timeline of what this VTC saw. The page keeps itself current: the server pushes a
 * server-sent event at every change this VTC sees (a key, a ballot, a PtP state, a VTS going
 * in or out) and at every change of another VTC's state, and the page then fetches the new
 * state. Nothing is loaded from elsewhere; there is nothing to click that changes the system.
 *
 * Routes: `/` (the page), `/api/status` (the page's data, JSON), `/api/events` (the event
 * stream), `/timeline.svg`, and `/metrics` when the same address serves the metrics.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HmacSha256 } from '../ptp/mac.js';
import type { PtpStatus } from '../ptp/types.js';
import type { ClusterEvent } from '../scenario/cluster.js';
import { timelineSvg } from '../scenario/svg.js';
import type { AgentEvent, AgentStatus, VtcAgent } from '../vtc/agent.js';
import { participants, RpcClient } from '../vtc/rpc.js';
import { listenHttp, type HttpEndpoint, type ListenAddress, type Route } from '../metrics/http.js';
import { statusJson } from './ptp-status.js';
import type { Topology } from './topology.js';

export interface StatusPageOptions {
  readonly agent: VtcAgent;
  readonly topology: Topology;
  readonly address: ListenAddress;
  /** More routes on the same address (the metrics, when `--metrics` names the same address). */
  readonly routes?: readonly Route[];
  /** How often the other VTCs are asked for their state (ms, default 2000). */
  readonly pollMs?: number;
  /** How much history the timeline shows (ms, default 15 minutes). */
  readonly timelineMs?: number;
}

/** One VTC's line on the page. */
export interface VtcLine {
  readonly id: string;
  readonly self: boolean;
  readonly reachable: boolean;
  readonly ptp: string | null;
  readonly keySeq: number | null;
  readonly threshold: number | null;
  /** When it last answered (ISO 8601), null if never. */
  readonly seenAt: string | null;
}

/** The running page. */
export interface StatusPage {
  readonly url: string;
  readonly endpoint: HttpEndpoint;
  /** What `/api/status` answers now. */
  snapshot(): Record<string, unknown>;
  stop(): Promise<void>;
}

const MAX_EVENTS = 4000;

/** The formatted PtP state back as the engine's (for the timeline of another VTC). */
export function parsePtpState(s: string): PtpStatus | null {
  if (s === 'online-both' || s === 'offline') return { kind: s };
  const single = /^online-single\(([AB])\)$/.exec(s);
  if (single) return { kind: 'online-single', vts: single[1] as 'A' | 'B' };
  const resync = /^resync\(([AB])->([AB])\)$/.exec(s);
  if (resync) return { kind: 'resync', from: resync[1] as 'A' | 'B', to: resync[2] as 'A' | 'B' };
  return null;
}

/** Starts the page. Rejects with the listen error. */
export async function startStatusPage(o: StatusPageOptions): Promise<StatusPage> {
  const { agent, topology: t } = o;
  const self = agent.self;
  const t0 = Date.now();
  const events: ClusterEvent[] = [];
  const clients = new Set<ServerResponse>();
  let version = 0;
  const push = (e: ClusterEvent): void => {
    events.push(e);
    if (events.length > MAX_EVENTS) events.splice(0, events.length - MAX_EVENTS);
  };
  const changed = (what: string): void => {
    version++;
    const frame = `event: change\ndata: ${JSON.stringify({ version, what })}\n\n`;
    for (const c of clients) c.write(frame);
  };

  // What this VTC knew when the page started, so the timeline does not begin blank.
  push({ kind: 'status', vtc: self, at: t0, t: 0, status: agent.engine.status(), seq: agent.engine.newestKey().seq });
  const start = agent.status();
  for (const x of ['A', 'B'] as const) {
    const v = start.vts[x];
    if (v !== null) push({ kind: 'vts', vtc: self, at: t0, t: 0, view: v });
  }
  const onEvent = (e: AgentEvent): void => {
    const t = e.at - t0;
    // The other VTCs' ballots as this VTC received them go on their own lanes of the timeline.
    if (e.kind === 'ballot') push({ ...e, vtc: e.ballot.voter, t });
    else push({ ...e, t });
    changed(e.kind);
  };
  agent.on('event', onEvent);

  // The other VTCs, asked as this VTC (the control endpoint answers `status` to any VTC of the system).
  const peers = new Map<string, { client: RpcClient; line: VtcLine }>();
  const sec = { names: participants(t.vtcs.map((v) => v.id)), mac: new HmacSha256(t.secret) };
  const pollMs = o.pollMs ?? 2000;
  for (const v of t.vtcs) {
    if (v.id === self) continue;
    peers.set(v.id, { client: new RpcClient(self, v.id, v.control, sec, Math.max(500, Math.min(pollMs, 5000))), line: { id: v.id, self: false, reachable: false, ptp: null, keySeq: null, threshold: null, seenAt: null } });
  }
  let polling = false;
  const poll = async (): Promise<void> => {
    if (polling) return;
    polling = true;
    try {
      await Promise.all(
        [...peers.entries()].map(async ([id, p]) => {
          const old = p.line;
          let next: VtcLine;
          try {
            const s = (await p.client.call('status', {})).result as AgentStatus;
            next = { id, self: false, reachable: true, ptp: s.ptp, keySeq: s.keySeq, threshold: s.threshold, seenAt: new Date().toISOString() };
          } catch {
            next = { ...old, reachable: false };
          }
          p.line = next;
          if (next.reachable !== old.reachable || next.ptp !== old.ptp || next.keySeq !== old.keySeq || next.threshold !== old.threshold) {
            const st = next.ptp === null ? null : parsePtpState(next.ptp);
            if (st !== null && (next.ptp !== old.ptp || next.keySeq !== old.keySeq)) push({ kind: 'status', vtc: id, at: Date.now(), t: Date.now() - t0, status: st, seq: next.keySeq ?? 0 });
            changed('vtc');
          }
        }),
      );
    } finally {
      polling = false;
    }
  };
  void poll();
  const poller = setInterval(() => void poll(), pollMs);
  poller.unref();
  // Comments keep proxies and the browser from dropping an idle stream.
  const keepAlive = setInterval(() => {
    for (const c of clients) c.write(': keep-alive\n\n');
  }, 15_000);
  keepAlive.unref();

  const snapshot = (): Record<string, unknown> => {
    const s = agent.status();
    const vtcs: VtcLine[] = t.vtcs.map((v) =>
      v.id === self ? { id: self, self: true, reachable: true, ptp: s.ptp, keySeq: s.keySeq, threshold: s.threshold, seenAt: new Date().toISOString() } : (peers.get(v.id)?.line ?? { id: v.id, self: false, reachable: false, ptp: null, keySeq: null, threshold: null, seenAt: null }),
    );
    return {
      format: 'ptpvts.status-page/1',
      at: new Date().toISOString(),
      version,
      status: statusJson(s, t.ptpId, t.vtcs.length),
      vtcs,
      elections: agent.elections().slice(-8).reverse(),
    };
  };

  const timeline = (): string => {
    const now = Date.now() - t0;
    const windowMs = o.timelineMs ?? 15 * 60_000;
    const from = Math.max(0, now - windowMs);
    // The state each lane was in when the window starts, then what happened in it.
    const before = new Map<string, ClusterEvent>();
    const inside: ClusterEvent[] = [];
    for (const e of events) {
      if (e.t >= from) inside.push({ ...e, t: e.t - from });
      else if (e.kind === 'status') before.set(`status:${e.vtc}`, { ...e, t: 0 });
      else if (e.kind === 'vts') before.set(`vts:${e.vtc}:${e.view.name}`, { ...e, t: 0 });
    }
    const svg = timelineSvg({
      title: `${t.ptpId} as VTC ${self} saw it, ${new Date(t0 + from).toISOString()} to ${new Date(t0 + now).toISOString()}`,
      vtcs: [self, ...t.vtcs.map((v) => v.id).filter((v) => v !== self)],
      events: [...before.values(), ...inside, { kind: 'step', t: now - from, text: 'now' }],
      steps: [],
      passed: true,
    });
    // A live timeline has no verdict: the scenario renderer's "passed" does not belong here.
    return svg.replace(/ — passed<\/text>/, '</text>');
  };

  const routes: Route[] = [
    (req, res) => {
      const path = (req.url ?? '').split('?')[0];
      if (req.method !== 'GET') return false;
      switch (path) {
        case '/':
        case '/index.html':
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(pageHtml(t.ptpId, self));
          return true;
        case '/api/status':
          res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(snapshot()));
          return true;
        case '/timeline.svg':
          res.writeHead(200, { 'content-type': 'image/svg+xml', 'cache-control': 'no-store' }).end(timeline());
          return true;
        case '/api/events':
          openStream(req, res);
          return true;
        case '/favicon.ico':
          // Browsers ask for one; there is none, and that is not an error.
          res.writeHead(204).end();
          return true;
        default:
          return false;
      }
    },
    ...(o.routes ?? []),
  ];
  const openStream = (req: IncomingMessage, res: ServerResponse): void => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    res.write(`retry: 2000\nevent: change\ndata: ${JSON.stringify({ version, what: 'hello' })}\n\n`);
    clients.add(res);
    req.on('close', () => clients.delete(res));
  };
  let endpoint: HttpEndpoint;
  try {
    endpoint = await listenHttp(o.address, routes, 'The status page is at /', 'the status page (--http)');
  } catch (e) {
    agent.off('event', onEvent);
    clearInterval(poller);
    clearInterval(keepAlive);
    for (const p of peers.values()) p.client.close();
    throw e;
  }
  let stopping: Promise<void> | undefined;
  return {
    url: `${endpoint.base}/`,
    endpoint,
    snapshot,
    stop: () =>
      (stopping ??= (async () => {
        agent.off('event', onEvent);
        clearInterval(poller);
        clearInterval(keepAlive);
        for (const c of clients) c.end();
        clients.clear();
        for (const p of peers.values()) p.client.close();
        await endpoint.close();
      })()),
  };
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** The page: static HTML with a script that renders `/api/status` and follows `/api/events`. Every value is put in with textContent. */
function pageHtml(ptpId: string, vtc: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>PtP system ${esc(ptpId)} — status</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 1.2rem; color: #222; }
  h1 { font-size: 1.3rem; margin: 0 0 .3rem; }
  h2 { font-size: 1.05rem; margin: 1.2rem 0 .4rem; }
  .meta { color: #666; font-size: .85rem; }
  #serving { font-size: 1.15rem; font-weight: 600; padding: .5rem .7rem; border-radius: 4px; display: inline-block; margin: .6rem 0; }
  #serving.yes { background: #e8f5e9; color: #1b5e20; }
  #serving.no { background: #ffebee; color: #b71c1c; }
  table { border-collapse: collapse; font-size: .92rem; }
  th, td { border-bottom: 1px solid #ddd; padding: .25rem .6rem; text-align: left; vertical-align: top; }
  th { background: #f5f5f5; }
  .bad { color: #b71c1c; }
  .live { color: #1b5e20; }
  ul { margin: .2rem 0; padding-left: 1.2rem; }
  #timeline svg { max-width: 100%; height: auto; border: 1px solid #ddd; }
</style>
</head>
<body>
<h1>PtP system ${esc(ptpId)}</h1>
<div class="meta">As VTC <b>${esc(vtc)}</b> sees it · <span id="conn">connecting…</span> · updated <span id="updated">never</span></div>
<div id="serving" data-testid="serving">…</div>
<div id="summary" class="meta"></div>
<h2>Next steps</h2>
<ul id="steps"><li>None needed.</li></ul>
<h2>VTCs</h2>
<table id="vtcs"><thead><tr><th>VTC</th><th>Answering</th><th>PtP state</th><th>Newest key</th><th>Threshold</th></tr></thead><tbody></tbody></table>
<h2>VTS</h2>
<table id="vts"><thead><tr><th>VTS</th><th>Answering</th><th>Own state</th><th>Serving hosts</th><th>Last key</th><th>Behind</th><th>Mounts</th></tr></thead><tbody></tbody></table>
<h2>Shutdown keys (newest first)</h2>
<table id="keys"><thead><tr><th>Seq</th><th>Command</th><th>Mode</th><th>Issued</th><th>By</th><th>PtP state</th><th>Current</th><th>Acknowledged by</th></tr></thead><tbody></tbody></table>
<h2>Elections (newest first)</h2>
<div id="elections">None seen.</div>
<h2>Timeline</h2>
<div id="timeline"></div>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
function cell(tr, text, cls) { const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; tr.appendChild(td); return td; }
function rows(tableId, items, fill) {
  const body = $(tableId).tBodies[0];
  body.replaceChildren();
  for (const it of items) { const tr = document.createElement("tr"); fill(tr, it); body.appendChild(tr); }
}
function render(d) {
  const s = d.status;
  const serving = $("serving");
  serving.className = s.servingHosts ? "yes" : "no";
  serving.textContent = s.servingHosts
    ? "Serving hosts: yes, through " + (s.servingThrough.length === 2 ? "VTS A and B" : "VTS " + s.servingThrough[0] + " alone") + " (" + s.ptp + ")"
    : "Serving hosts: no, the PtP system is off-line (" + s.ptp + ")";
  serving.dataset.ptp = s.ptp;
  $("summary").textContent = "Newest key " + s.keySeq + ", VTC agreement threshold " + s.threshold + (s.threshold < s.minSafeThreshold ? " (below floor(n/2)!)" : "") +
    ", copies queued " + s.copyQueue + ", rejected frames " + s.rejectedFrames + ", rejected messages " + s.rejectedMessages + ".";
  const steps = $("steps");
  steps.replaceChildren();
  for (const t of s.nextSteps.length ? s.nextSteps : ["None needed."]) { const li = document.createElement("li"); li.textContent = t; steps.appendChild(li); }
  rows("vtcs", d.vtcs, (tr, v) => {
    tr.dataset.vtc = v.id;
    cell(tr, v.id + (v.self ? " (this one)" : ""));
    cell(tr, v.reachable ? "yes" : "no", v.reachable ? "" : "bad");
    cell(tr, v.ptp ?? "unknown");
    cell(tr, v.keySeq === null ? "" : String(v.keySeq));
    cell(tr, v.threshold === null ? "" : String(v.threshold));
  });
  rows("vts", ["A", "B"], (tr, x) => {
    const v = s.vts[x];
    tr.dataset.vts = x;
    cell(tr, "VTS " + x);
    cell(tr, v ? "yes" : "no", v ? "" : "bad");
    cell(tr, v ? (v.inOperation ? "in operation" : "out of operation") + (v.refusing ? ", refusing new mounts" : "") : "unknown");
    cell(tr, v && v.servingHosts ? "yes" : "no");
    cell(tr, v ? String(v.lastKeySeq) : "");
    cell(tr, v ? String(v.behind.length) : "");
    cell(tr, v ? String(v.mounts) : "");
  });
  rows("keys", s.keys.slice().reverse(), (tr, k) => {
    tr.dataset.seq = String(k.seq);
    cell(tr, String(k.seq));
    cell(tr, k.command + (k.subjects.length === 1 ? " " + k.subjects[0] : "") + (k.note ? " — “" + k.note + "”" : ""));
    cell(tr, k.mode + " (" + k.reason + ")");
    cell(tr, k.issuedAt ?? "");
    cell(tr, k.originVtc || "genesis");
    cell(tr, k.state);
    cell(tr, "{" + k.current.join(",") + "}");
    cell(tr, k.acks.join(", "));
  });
  const el = $("elections");
  el.replaceChildren();
  if (!d.elections.length) el.textContent = "None seen.";
  for (const e of d.elections) {
    const yes = e.ballots.filter((b) => b.choice === "yes").length;
    const p = document.createElement("div");
    p.textContent = "Placing VTS " + e.id.vts + " on-line after key " + e.id.seq + " (round " + e.id.round + "): " + yes + " yes, " + (e.ballots.length - yes) + " no; passes with more than " + s.threshold + " yes.";
    const ul = document.createElement("ul");
    for (const b of e.ballots) { const li = document.createElement("li"); li.textContent = b.voter + " voted " + b.choice + " with key " + b.keySeq + ": " + b.why; ul.appendChild(li); }
    el.appendChild(p); el.appendChild(ul);
  }
  $("updated").textContent = d.at;
  document.body.dataset.version = String(d.version);
}
let busy = false, again = false;
async function refresh() {
  if (busy) { again = true; return; }
  busy = true;
  try {
    const [st, svg] = await Promise.all([fetch("/api/status", { cache: "no-store" }), fetch("/timeline.svg", { cache: "no-store" })]);
    if (!st.ok) throw new Error("status " + st.status);
    render(await st.json());
    if (svg.ok) $("timeline").innerHTML = await svg.text();
  } catch (e) {
    $("conn").textContent = "cannot reach the VTC (" + e.message + "), retrying";
    $("conn").className = "bad";
  } finally {
    busy = false;
    if (again) { again = false; refresh(); }
  }
}
const events = new EventSource("/api/events");
events.addEventListener("change", () => refresh());
events.onopen = () => { $("conn").textContent = "live"; $("conn").className = "live"; };
events.onerror = () => { $("conn").textContent = "disconnected, reconnecting…"; $("conn").className = "bad"; };
// The timeline's "now" moves on even when nothing happens.
setInterval(refresh, 10000);
refresh();
</script>
</body>
</html>
`;
}
