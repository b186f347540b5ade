/**
 * The web status page of `ptpvts vtc --http`: loaded in Debian's chromium (driven by
 * playwright-core) from a VTC of a running PtP system, it shows the VTCs, both VTS, whether
 * hosts are served, the keys, the elections and the timeline, and follows operator
 * commands and a VTC going away without being reloaded. Without /usr/bin/chromium the
 * browser test is skipped, and says so in its name; the HTTP part runs everywhere.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startVtcServices, type VtcServices } from '../../src/cli/ptp-commands.js';
import { startTestSystem, until, type TestSystem } from './fixtures/ptp-system.js';

const CHROMIUM = process.env.PTPVTS_CHROMIUM ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);

let sys: TestSystem;
let services: VtcServices;
let url: string;

beforeAll(async () => {
  sys = await startTestSystem('page', ['vtc1', 'vtc2', 'vtc3']);
  services = await startVtcServices(sys.vtcs.vtc1!, sys.topology, { http: { host: '127.0.0.1', port: 0 } }, { processMetrics: false, pollMs: 250 });
  url = services.pageUrl!;
}, 60_000);

afterAll(async () => {
  await services?.stop();
  await sys?.stop();
});

/** Reads the event stream until `match` is seen in it; resolves with what was read. */
async function streamUntil(match: RegExp, during: () => Promise<void>): Promise<string> {
  const ac = new AbortController();
  const r = await fetch(`${url}api/events`, { signal: ac.signal });
  expect(r.headers.get('content-type')).toBe('text/event-stream');
  const reader = r.body!.getReader();
  let text = '';
  const first = await reader.read();
  text += new TextDecoder().decode(first.value);
  await during();
  const deadline = Date.now() + 15_000;
  while (!match.test(text) && Date.now() < deadline) {
    const c = await reader.read();
    if (c.done) break;
    text += new TextDecoder().decode(c.value);
  }
  ac.abort();
  return text;
}

describe('the status page over HTTP', () => {
  it('answers the page, its data and the timeline on 127.0.0.1, and pushes an event when a key comes', async () => {
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const html = await (await fetch(url)).text();
    expect(html).toMatch(/<title>PtP system page — status<\/title>/);
    await until('on-line with both VTS, vtc2 and vtc3 answering', async () => {
      const d = (await (await fetch(`${url}api/status`)).json()) as { status: { ptp: string }; vtcs: { id: string; reachable: boolean; ptp: string }[] };
      return d.status.ptp === 'online-both' && d.vtcs.every((v) => v.reachable && v.ptp === 'online-both');
    });
    const d = (await (await fetch(`${url}api/status`)).json()) as { format: string; status: { format: string; ptp: string }; vtcs: { id: string; self: boolean; ptp: string }[] };
    expect(d.format).toBe('ptpvts.status-page/1');
    expect(d.status.format).toBe('ptpvts.status/1');
    expect(d.status.ptp).toBe('online-both');
    expect(d.vtcs.map((v) => [v.id, v.self, v.ptp])).toEqual([
      ['vtc1', true, 'online-both'],
      ['vtc2', false, 'online-both'],
      ['vtc3', false, 'online-both'],
    ]);
    const svg = await fetch(`${url}timeline.svg`);
    expect(svg.headers.get('content-type')).toBe('image/svg+xml');
    expect(await svg.text()).toMatch(/^<svg [^>]*>[\s\S]*>VTS A<[\s\S]*>vtc3<[\s\S]*<\/svg>/);
    expect((await fetch(`${url}nothing`)).status).toBe(404);
    // A key on another VTC's command reaches this VTC, and the page's stream says so.
    const seen = await streamUntil(/"what":"key"/, async () => {
      await sys.vtcs.vtc2!.command({ command: 'vts-out', vts: 'A', mode: 'normal' }, 20_000);
    });
    expect(seen).toMatch(/^retry: 2000\nevent: change\ndata: \{"version":\d+,"what":"hello"\}/);
    expect(seen).toMatch(/event: change\ndata: \{"version":\d+,"what":"key"\}/);
    await sys.vtcs.vtc2!.command({ command: 'vts-in', vts: 'A' }, 20_000);
    await until('online-both again', () => sys.vtcs.vtc1!.engine.status().kind === 'online-both');
  }, 60_000);
});

describe(haveChromium ? 'the status page in chromium' : `the status page in chromium (SKIPPED: no browser at ${CHROMIUM}; apt-get install chromium)`, () => {
  let profile: string;
  let context: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    if (!haveChromium) return;
    profile = mkdtempSync(join(tmpdir(), 'ptpvts-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    page = context.pages()[0] ?? (await context.newPage());
  }, 60_000);

  afterAll(async () => {
    await context?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it.skipIf(!haveChromium)('shows the system live: VTCs, VTS, keys, elections and timeline follow commands without a reload', async () => {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    await until('on-line with both VTS', () => sys.vtcs.vtc1!.engine.status().kind === 'online-both');
    const k = sys.vtcs.vtc1!.engine.newestKey().seq;
    await page.goto(url);
    const serving = page.getByTestId('serving');
    await expect.poll(() => serving.textContent(), { timeout: 15_000 }).toBe('Serving hosts: yes, through VTS A and B (online-both)');
    await expect.poll(() => page.locator('#conn').textContent(), { timeout: 10_000 }).toBe('live');
    const vtcRows = page.locator('#vtcs tbody tr');
    await expect.poll(() => vtcRows.allTextContents(), { timeout: 15_000 }).toEqual([`vtc1 (this one)yesonline-both${k}1`, `vtc2yesonline-both${k}1`, `vtc3yesonline-both${k}1`]);
    expect(await page.locator('#vts tbody tr[data-vts="A"]').textContent()).toMatch(/^VTS Ayesin operationyes/);
    await expect.poll(() => page.locator('#timeline svg').count(), { timeout: 10_000 }).toBe(1);
    // Nothing below reloads the page: a mark on the window would be lost with a reload.
    await page.evaluate(() => ((globalThis as unknown as { mark: number }).mark = 42));

    // VTS B out (vtc3 coordinates): hosts served through A alone, the key listed with its time, VTS B out.
    await sys.vtcs.vtc3!.command({ command: 'vts-out', vts: 'B', mode: 'normal' }, 20_000);
    await expect.poll(() => serving.textContent(), { timeout: 15_000 }).toBe('Serving hosts: yes, through VTS A alone (online-single(A))');
    const key = page.locator(`#keys tbody tr[data-seq="${k + 1}"]`);
    await expect.poll(() => key.textContent(), { timeout: 10_000 }).toMatch(new RegExp(`^${k + 1}vts-out Bnormal \\(command\\)\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Zvtc3online-single\\(A\\)\\{A\\}`));
    await expect.poll(() => page.locator('#vts tbody tr[data-vts="B"]').textContent(), { timeout: 10_000 }).toMatch(new RegExp(`^VTS Byesout of operation(, refusing new mounts)?no${k + 1}`));
    await expect.poll(() => page.locator('#timeline svg').innerHTML(), { timeout: 10_000 }).toContain(`k${k + 1}: vts-out B`);

    // A out too: off-line, with the next step named; then A back alone wins an election.
    await sys.vtcs.vtc1!.command({ command: 'vts-out', vts: 'A', mode: 'normal' }, 20_000);
    await expect.poll(() => serving.textContent(), { timeout: 15_000 }).toBe('Serving hosts: no, the PtP system is off-line (offline)');
    await expect.poll(() => page.locator('#steps').textContent(), { timeout: 10_000 }).toMatch(/VTS A holds the newest data and is out of operation: `ptpvts vts in A` puts it back/);
    await sys.vtcs.vtc1!.command({ command: 'vts-in', vts: 'A' }, 20_000);
    // More than T = 1 yes passes: vtc1's and whichever acknowledgement came first (the
    // other may arrive after the key went ahead, and is then not listed).
    await expect.poll(() => page.locator('#elections').textContent(), { timeout: 20_000 }).toMatch(/Placing VTS A on-line after key \d+ \(round \d+\): [23] yes, 0 no[\s\S]*vtc[23] voted yes with key/);
    await expect.poll(() => serving.textContent(), { timeout: 20_000 }).toBe('Serving hosts: yes, through VTS A alone (online-single(A))');
    // The ballots are on the VTC lanes of the timeline.
    await expect.poll(() => page.locator('#timeline svg circle title').allTextContents(), { timeout: 10_000 }).toContainEqual(expect.stringMatching(/^vtc[23] votes yes on A/));

    // A VTC going away shows as not answering.
    await sys.vtcs.vtc3!.stop();
    await expect.poll(() => page.locator('#vtcs tbody tr[data-vtc="vtc3"]').textContent(), { timeout: 15_000 }).toMatch(/^vtc3no/);

    expect(await page.evaluate(() => (globalThis as unknown as { mark?: number }).mark)).toBe(42);
    expect(errors).toEqual([]);
  }, 120_000);
});
