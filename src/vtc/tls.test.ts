/**
 * Data in transit between VTCs (and the operator) and the VTS over TLS: a pre-shared key
 * or mutual certificates. Checks what an operator relies on: volume data written and read
 * back over TLS, refusals (wrong key, unknown identity, wrong CA, plain and TLS ends
 * mixed) with a clear log line on the VTS naming the peer and the reason, the bytes on the
 * wire not carrying the data, and the topology's `tls` section checked with errors naming
 * the field.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Command } from 'commander';
import { memoryOut } from '../cli/output.js';
import { startVtc, startVts } from '../cli/ptp-commands.js';
import { registerVolumeCommands } from '../cli/volumes.js';
import { serveVtcLibrary } from '../cli/virtual-library.js';
import * as Cdb from '../scsi/cdb.js';
import { decodeSense } from '../scsi/sense.js';
import { ScsiStatus } from '../scsi/status.js';
import { IscsiSession } from '../iscsi/session.js';
import { IscsiPort } from '../transport/iscsi/iscsi-port.js';
import { generateTopologyKeys } from '../cli/keys.js';
import { loadTopology, tlsFor, TopologyError, validateTopology } from '../cli/topology.js';
import { tlsNet } from '../platform/net.js';
import type { PlatformNet, TlsSettings } from '../platform/net.js';
import { HmacSha256 } from '../ptp/mac.js';
import type { VtcAgent } from './agent.js';
import { VtsVolumes } from './host-library/vts-volumes.js';
import { participants } from './rpc.js';
import { VtsClient, vtsTlsNet } from './vts-client.js';
import { VtsHost } from './vts-host.js';
import { topologyBase } from '../../test/kit/topology.js';

const SECRET = 'tls-test-cluster-secret';
const VTCS = ['vtc1', 'vtc2'];
const PSK = new Uint8Array(randomBytes(32));
/** A block no TLS record can contain by chance, so finding it on the wire means plaintext. */
const MARKER = 'PTPVTS-PLAINTEXT-MARKER-';
const BLOCK = new TextEncoder().encode(Array.from({ length: 512 }, (_, i) => `${MARKER}${String(i).padStart(6, '0')}`).join(''));

interface LogLine {
  level: number;
  msg: string;
  peer?: string;
  reason?: string;
}

let dir: string;
let logs: LogLine[];
const hosts: VtsHost[] = [];
const clients: { disconnect(): void }[] = [];
const servers: Server[] = [];
const agents: VtcAgent[] = [];
const stops: (() => Promise<void>)[] = [];

function logger(): pino.Logger {
  return pino({ level: 'info' }, { write: (s: string) => logs.push(JSON.parse(s) as LogLine) });
}

async function startHost(tls?: TlsSettings): Promise<VtsHost> {
  const host = new VtsHost({ name: 'A', vtcs: VTCS, secret: SECRET, listen: { host: '127.0.0.1', port: 0 }, cacheDir: join(dir, 'cache'), stateDir: join(dir, 'state'), logger: logger(), ...(tls === undefined ? {} : { tls }) });
  await host.start();
  hosts.push(host);
  return host;
}

function client(port: number, net?: PlatformNet, self = 'vtc1'): VtsClient {
  const c = new VtsClient(self, 'A', { host: '127.0.0.1', port }, { names: participants(VTCS), mac: new HmacSha256(SECRET) }, 5_000, undefined, net === undefined ? {} : { net });
  clients.push(c);
  return c;
}

/** Writes `data` to a scratch volume and reads it back as one block. */
async function roundTrip(c: VtsClient, volser: string, data: Uint8Array): Promise<Uint8Array> {
  const h = await c.mount(volser, { scratch: true });
  await c.write(h, data);
  await c.close(h, {});
  const r = await c.mount(volser, { writable: false });
  const got = await c.read(r, 1 << 20);
  await c.abandon(r);
  if (got.kind !== 'block') throw new Error(`expected a block, got ${got.kind}`);
  return got.data;
}

/** The VTS's log lines about refused connections. */
const refusals = (): LogLine[] => logs.filter((l) => l.level === 50 && l.reason !== undefined);

async function until(what: string, cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A TCP relay on 127.0.0.1 that keeps every byte it forwards, both ways. */
async function tap(target: number): Promise<{ port: number; bytes: () => Buffer }> {
  const seen: Buffer[] = [];
  const server = createServer((inbound: Socket) => {
    const out = createConnection({ host: '127.0.0.1', port: target });
    inbound.on('data', (d: Buffer) => {
      seen.push(d);
      out.write(d);
    });
    out.on('data', (d: Buffer) => {
      seen.push(d);
      inbound.write(d);
    });
    inbound.on('close', () => out.destroy());
    out.on('close', () => inbound.destroy());
    inbound.on('error', () => undefined);
    out.on('error', () => undefined);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address();
  return { port: typeof a === 'object' && a !== null ? a.port : 0, bytes: () => Buffer.concat(seen) };
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ptpvts-tls-'));
  logs = [];
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.disconnect();
  for (const a of agents.splice(0)) await a.stop();
  for (const s of stops.splice(0)) await s();
  for (const h of hosts.splice(0)) await h.stop();
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
  rmSync(dir, { recursive: true, force: true });
});

describe('TLS with a pre-shared key', () => {
  it('a VTC writes and reads a volume over TLS', async () => {
    const host = await startHost({ psk: PSK, identity: 'vts-A' });
    const c = client(host.port, vtsTlsNet({ psk: PSK, identity: 'ignored' }, 'vtc1', 'A'));
    expect(Buffer.from(await roundTrip(c, 'T00001', BLOCK)).equals(Buffer.from(BLOCK))).toBe(true);
    expect(host.serverStats()!.refused).toBe(0);
    expect(refusals()).toEqual([]);
  });

  it('a client with another key is refused, and the VTS logs who and why', async () => {
    const host = await startHost({ psk: PSK, identity: 'vts-A' });
    const c = client(host.port, vtsTlsNet({ psk: new Uint8Array(randomBytes(32)), identity: 'x' }, 'vtc1', 'A'));
    await expect(c.view()).rejects.toThrow(/^vts-A at 127\.0\.0\.1:\d+ cannot be reached: TLS handshake with 127\.0\.0\.1:\d+ failed: the pre-shared keys differ/);
    await until('the refusal in the log', () => refusals().length > 0);
    const r = refusals()[0]!;
    expect(r.peer).toMatch(/^127\.0\.0\.1:\d+ \(identity "vtc1"\)$/);
    expect(r.reason).toMatch(/^TLS handshake failed: the pre-shared keys differ/);
    expect(r.msg).toContain('VTS A refused a connection from 127.0.0.1:');
    expect(host.serverStats()!.refused).toBe(1);
  });

  it('an identity that is not a participant is refused', async () => {
    const host = await startHost({ psk: PSK, identity: 'vts-A' });
    const c = client(host.port, tlsNet({ psk: PSK, identity: 'intruder' }));
    await expect(c.view()).rejects.toThrow(/TLS handshake with 127\.0\.0\.1:\d+ failed/);
    await until('the refusal in the log', () => refusals().length > 0);
    expect(refusals()[0]!.reason).toBe('unknown PSK identity "intruder": not a participant of this PtP system');
  });

  it('a channel carries only the participant it authenticated: frames of another are refused', async () => {
    const host = await startHost({ psk: PSK, identity: 'vts-A' });
    // Holds the cluster secret and the key, signs its frames as vtc1 on vtc2's channel.
    const c = client(host.port, tlsNet({ psk: PSK, identity: 'vtc2' }), 'vtc1');
    await expect(c.view()).rejects.toThrow(/connection closed/);
    await until('the refusal in the log', () => refusals().length > 0);
    expect(refusals()[0]).toMatchObject({ peer: 'TLS peer "vtc2"', reason: 'it sent a frame as "vtc1": a channel carries only the participant TLS authenticated' });
    // The same key, its own name: served.
    expect((await client(host.port, tlsNet({ psk: PSK, identity: 'vtc2' }), 'vtc2').view()).name).toBe('A');
  });

  it('a plain TCP client is refused by a TLS VTS, with the reason in the log', async () => {
    const host = await startHost({ psk: PSK, identity: 'vts-A' });
    const c = client(host.port);
    await expect(c.view()).rejects.toThrow(/cannot be reached/);
    await until('the refusal in the log', () => refusals().length > 0);
    expect(refusals()[0]!.reason).toMatch(/^TLS handshake failed: the peer does not speak TLS \(plain TCP\): give every process the same `tls` section of the topology \(ERR_SSL_WRONG_VERSION_NUMBER: wrong version number\)$/);
    expect(host.unit!.volumes()).toEqual([]);
  });

  it('a TLS client is refused by a plain VTS, with the reason at both ends', async () => {
    const host = await startHost();
    const c = client(host.port, vtsTlsNet({ psk: PSK, identity: '' }, 'vtc1', 'A'));
    await expect(c.view()).rejects.toThrow(/TLS handshake with 127\.0\.0\.1:\d+ failed: the peer closed the connection during the handshake/);
    await until('the refusal in the log', () => refusals().length > 0);
    expect(refusals()[0]!.reason).toBe('the client speaks TLS but this endpoint is plain TCP: give every process the same `tls` section of the topology');
    expect(host.serverStats()!.refused).toBe(1);
    // Plain clients are still served.
    expect((await client(host.port).view()).name).toBe('A');
  });

  it('a VTS stops at once with a connection still in its handshake, logging no refusal', async () => {
    const host = await startHost({ psk: PSK, identity: 'vts-A' });
    const idle = createConnection({ host: '127.0.0.1', port: host.port });
    idle.on('error', () => undefined);
    await new Promise((r) => idle.once('connect', r));
    const closed = new Promise((r) => idle.once('close', r));
    const t0 = Date.now();
    await host.stop();
    await closed;
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(refusals()).toEqual([]);
  }, 5000);

  it('keys shorter than 32 bytes are refused before any connection', () => {
    expect(() => tlsNet({ psk: new Uint8Array(31), identity: 'vtc1' })).toThrow('the pre-shared key has 31 bytes: at least 32 are needed');
  });
});

describe('on the wire', () => {
  it('volume data crosses the network in clear without TLS and never with it', async () => {
    const plain = await startHost();
    const tp = await tap(plain.port);
    await roundTrip(client(tp.port), 'T00002', BLOCK);
    expect(tp.bytes().includes(MARKER)).toBe(true);
    await plain.stop();

    const secure = await startHost({ psk: PSK, identity: 'vts-A' });
    const ts = await tap(secure.port);
    const back = await roundTrip(client(ts.port, vtsTlsNet({ psk: PSK, identity: '' }, 'vtc1', 'A')), 'T00003', BLOCK);
    expect(Buffer.from(back).equals(Buffer.from(BLOCK))).toBe(true);
    // Both directions went through the tap: the block there and back, encrypted.
    expect(ts.bytes().length).toBeGreaterThan(2 * BLOCK.length);
    expect(ts.bytes().includes(MARKER)).toBe(false);
    expect(ts.bytes().includes(Buffer.from(BLOCK.subarray(0, 64)))).toBe(false);
  });
});

function haveOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const OPENSSL = haveOpenssl();
if (!OPENSSL) console.warn('tls.test.ts: openssl is not on PATH: the certificate tests are skipped');

/** A CA and certificates signed by it (EC P-256), made with the openssl command. */
function makeCa(at: string, name: string): { ca: string; issue: (cn: string, dns?: string) => { cert: string; key: string } } {
  mkdirSync(at, { recursive: true });
  const o = (...args: string[]): void => {
    execFileSync('openssl', args, { cwd: at, stdio: 'pipe' });
  };
  o('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', `/CN=${name}`);
  let serial = 1;
  return {
    ca: join(at, 'ca.pem'),
    issue(cn, dns) {
      o('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${cn}.key`, '-out', `${cn}.csr`, '-subj', `/CN=${cn}`);
      writeFileSync(join(at, `${cn}.ext`), `basicConstraints=CA:FALSE\n${dns === undefined ? '' : `subjectAltName=DNS:${dns}\n`}`);
      o('x509', '-req', '-in', `${cn}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', String(serial++), '-out', `${cn}.pem`, '-days', '2', '-extfile', `${cn}.ext`);
      return { cert: join(at, `${cn}.pem`), key: join(at, `${cn}.key`) };
    },
  };
}

describe.skipIf(!OPENSSL)('TLS with certificates (mutual)', () => {
  const read = (p: string): string => readFileSync(p, 'utf8');
  const settings = (ca: string, id: { cert: string; key: string }): TlsSettings => ({ ca: read(ca), cert: read(id.cert), key: read(id.key) });

  it('a VTC with a certificate of the CA writes and reads; wrong CA, unknown name and wrong server name are refused', async () => {
    const good = makeCa(join(dir, 'ca'), 'ptpvts test CA');
    const rogue = makeCa(join(dir, 'rogue'), 'another CA');
    const vtsA = good.issue('vts-A', 'vts-A');
    const host = await startHost(settings(good.ca, vtsA));
    const vtc1 = settings(good.ca, good.issue('vtc1'));

    const c = client(host.port, vtsTlsNet(vtc1, 'vtc1', 'A'));
    expect(Buffer.from(await roundTrip(c, 'T00004', BLOCK)).equals(Buffer.from(BLOCK))).toBe(true);
    expect(refusals()).toEqual([]);

    // A client certificate from another CA.
    await expect(client(host.port, vtsTlsNet(settings(good.ca, rogue.issue('vtc1')), 'vtc1', 'A')).view()).rejects.toThrow(/TLS with 127\.0\.0\.1:\d+: the server closed the connection before any answer: it may have refused this end's certificate/);
    await until('the refusal in the log', () => refusals().length >= 1);
    expect(refusals()[0]).toMatchObject({ peer: expect.stringMatching(/^127\.0\.0\.1:\d+ \(certificate "vtc1"\)$/), reason: "its certificate was not accepted: UNABLE_TO_VERIFY_LEAF_SIGNATURE (client certificates must be signed by the topology's tls.ca)" });

    // Signed by the CA, but not a participant.
    await expect(client(host.port, vtsTlsNet(settings(good.ca, good.issue('stranger')), 'vtc1', 'A')).view()).rejects.toThrow(/cannot be reached/);
    await until('the second refusal', () => refusals().length >= 2);
    expect(refusals()[1]!.reason).toBe('its certificate\'s common name "stranger" is not a participant of this PtP system');

    // The VTC expects VTS B's name: A's certificate does not carry it.
    await expect(client(host.port, vtsTlsNet(vtc1, 'vtc1', 'B')).view()).rejects.toThrow(/the certificate was not accepted \(ERR_TLS_CERT_ALTNAME_INVALID/);
    // A server certificate from another CA.
    await host.stop();
    const fake = await startHost(settings(rogue.ca, rogue.issue('vts-A', 'vts-A')));
    await expect(client(fake.port, vtsTlsNet(vtc1, 'vtc1', 'A')).view()).rejects.toThrow(/the certificate was not accepted/);
    // Certificates at one end and a key at the other.
    await expect(client(fake.port, vtsTlsNet({ psk: PSK, identity: '' }, 'vtc1', 'A')).view()).rejects.toThrow(/TLS handshake with 127\.0\.0\.1:\d+ failed/);
  });

  it('a topology with tls.ca: each process gets its own certificate; a missing or mismatched one is named', () => {
    const good = makeCa(join(dir, 'ca'), 'ptpvts test CA');
    const a = good.issue('vts-A', 'vts-A');
    const b = good.issue('vts-B', 'vts-B');
    const v1 = good.issue('vtc1');
    const doc = {
      ...topologyBase(),
      tls: { ca: good.ca },
      vts: { A: { ...topologyBase().vts.A, tls: a }, B: { ...topologyBase().vts.B, tls: { cert: b.cert, key: join(dir, 'missing.key') } } },
      vtcs: [{ ...topologyBase().vtcs[0], tls: { cert: v1.cert, key: a.key } }, { ...topologyBase().vtcs[1], tls: v1 }],
    };
    const t = validateTopology(doc, join(dir, 't.yaml'));
    expect(tlsFor(t, { vts: 'A' })).toMatchObject({ cert: read(a.cert), key: read(a.key) });
    expect(() => tlsFor(t, { vts: 'B' })).toThrow(/^vts\.B\.tls\.key: cannot read .*missing\.key: ENOENT/);
    expect(() => tlsFor(t, { vtc: 'vtc1' })).toThrow(/^vtcs\.0\.tls: .* are not a usable certificate and key: .*key values mismatch/);
    expect(() => tlsFor(t, 'operator')).toThrow('operator.tls: missing: with tls.ca, operator needs tls: { cert, key } (its certificate and private key, PEM)');
  });
});

/** `ptpvts volumes ...`: exit code and output. */
async function volumesCli(...args: string[]): Promise<{ code: number; out: string }> {
  const o = memoryOut();
  const program = new Command('ptpvts').exitOverride().configureOutput({ writeOut: (x) => o.line(x.trimEnd()), writeErr: (x) => o.error(x.trimEnd()) });
  registerVolumeCommands(program, o);
  try {
    await program.parseAsync(['node', 'ptpvts', 'volumes', ...args]);
    return { code: 0, out: o.lines.join('\n') };
  } catch (e) {
    return { code: 1, out: `${o.lines.join('\n')}${(e as Error).message}` };
  }
}

describe('the topology`s tls section', () => {
  const files: Record<string, string> = {
    '/etc/ptp/good.psk': `${Buffer.from(PSK).toString('hex')}\n`,
    '/etc/ptp/good64.psk': Buffer.from(PSK).toString('base64'),
    '/etc/ptp/short.psk': 'ab'.repeat(31),
    '/etc/ptp/junk.psk': 'not a key!',
    '/etc/ptp/ca.pem': '-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n',
    '/etc/ptp/empty.pem': 'nothing here',
  };
  const read = (p: string): string => {
    const f = files[p];
    if (f === undefined) throw new Error(`ENOENT: no such file or directory, open '${p}'`);
    return f;
  };
  const load = (doc: unknown) => validateTopology(doc, '/etc/ptp/t.yaml', read);
  const err = (doc: unknown): TopologyError => {
    try {
      load(doc);
    } catch (e) {
      if (e instanceof TopologyError) return e;
      throw e;
    }
    throw new Error('expected a TopologyError');
  };

  it('is off when absent, and reads a hex or base64 pre-shared key', () => {
    expect(load(topologyBase()).tls).toBeUndefined();
    const t = load({ ...topologyBase(), tls: { psk: 'good.psk' } });
    expect(t.tls).toEqual({ psk: Buffer.from(PSK), pskFile: '/etc/ptp/good.psk' });
    expect(tlsFor(t, { vtc: 'vtc2' })).toEqual({ psk: Buffer.from(PSK), identity: 'vtc2' });
    expect(load({ ...topologyBase(), tls: { psk: 'good64.psk' } }).tls).toMatchObject({ psk: Buffer.from(PSK) });
  });

  it('names the field and the problem', () => {
    expect(err({ ...topologyBase(), tls: { psk: 'short.psk' } }).message).toBe('tls.psk: /etc/ptp/short.psk: the key has 31 bytes: at least 32 are needed (make one with: openssl rand -hex 32)');
    expect(err({ ...topologyBase(), tls: { psk: 'junk.psk' } }).message).toBe('tls.psk: /etc/ptp/junk.psk: expected the key as hex or base64');
    expect(err({ ...topologyBase(), tls: { psk: 'gone.psk' } }).message).toMatch(/^tls\.psk: cannot read \/etc\/ptp\/gone\.psk: ENOENT/);
    expect(err({ ...topologyBase(), tls: {} }).message).toBe('tls: give exactly one of psk (a pre-shared key file) and ca (the certificate authority of per-process certificates)');
    expect(err({ ...topologyBase(), tls: { psk: 'good.psk', ca: 'ca.pem' } }).field).toBe('tls');
    expect(err({ ...topologyBase(), tls: { psk: 'good.psk', cipher: 'rc4' } }).message).toMatch(/^tls: .*cipher/);
    expect(err({ ...topologyBase(), tls: { ca: 'ca.pem' } }).message).toMatch(/^vts\.A\.tls: missing: with tls\.ca, VTS A needs tls: \{ cert, key \}/);
    const withCerts = { ...topologyBase(), tls: { ca: 'ca.pem' }, vts: { A: { ...topologyBase().vts.A, tls: { cert: 'a.pem', key: 'a.key' } }, B: { ...topologyBase().vts.B, tls: { cert: 'b.pem', key: 'b.key' } } } };
    expect(err(withCerts).message).toMatch(/^vtcs\.0\.tls: missing: with tls\.ca, VTC vtc1 needs tls/);
    const complete = { ...withCerts, vtcs: withCerts.vtcs.map((v) => ({ ...v, tls: { cert: `${v.id}.pem`, key: `${v.id}.key` } })) };
    expect(load(complete).tls).toMatchObject({ caFile: '/etc/ptp/ca.pem' });
    expect(err({ ...complete, tls: { ca: 'gone.pem' } }).message).toMatch(/^tls\.ca: cannot read \/etc\/ptp\/gone\.pem: ENOENT/);
    expect(err({ ...complete, tls: { ca: 'empty.pem' } }).message).toBe('tls.ca: /etc/ptp/empty.pem holds no PEM certificate (-----BEGIN CERTIFICATE-----)');
    expect(err({ ...topologyBase(), vts: withCerts.vts }).message).toBe('vts.A.tls: a certificate is only used with tls.ca at the top level of the topology (and 1 more problem(s))');
  });
});

describe('a PtP system from a topology with tls', () => {
  it('VTCs and the operator reach both VTS over TLS; a host write and read go through', async () => {
    const free = async (): Promise<string> => {
      const s = createServer();
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
      const a = s.address();
      await new Promise((r) => s.close(r));
      return `127.0.0.1:${typeof a === 'object' && a !== null ? a.port : 0}`;
    };
    writeFileSync(join(dir, 'ptp.psk'), Buffer.from(PSK).toString('base64'));
    const doc = {
      ptpId: 'tlsptp',
      secret: SECRET,
      tls: { psk: 'ptp.psk' },
      timing: { tick: 20, heartbeatTimeout: 1000, returnGrace: 150, helloInterval: 200, stagger: 40, ackTimeout: 600, electionTimeout: 500, pendingTimeout: 1200 },
      vtcs: await Promise.all(['vtc1', 'vtc2', 'vtc3'].map(async (id) => ({ id, listen: await free(), control: await free(), journalDir: `./${id}` }))),
      vts: { A: { listen: await free(), cacheDir: './A/cache', stateDir: './A/state' }, B: { listen: await free(), cacheDir: './B/cache', stateDir: './B/state' } },
    };
    const path = join(dir, 'topology.yaml');
    writeFileSync(path, stringify(doc));
    generateTopologyKeys(path, join(dir, 'keys'));
    const t = loadTopology(path);
    const log = logger();
    for (const x of ['A', 'B'] as const) stops.push((await startVts(t, x, log)).stop);
    for (const v of t.vtcs) agents.push(await startVtc(t, v.id, log));
    await until('both VTS in every VTC\'s view', () => agents.every((a) => a.engine.status().kind === 'online-both' && a.status().vts.A !== null && a.status().vts.B !== null), 10_000);

    const [a1, a2] = agents as [VtcAgent, VtcAgent];
    const h = await a1.mount('T00010', { scratch: true });
    await a1.write(h, BLOCK);
    expect((await a1.close(h)).copies).toEqual(['A', 'B']);
    const r = await a2.mount('T00010', { writable: false });
    const got = await a2.read(r);
    await a2.close(r);
    expect(got.kind === 'block' && Buffer.from(got.data).equals(Buffer.from(BLOCK))).toBe(true);

    // The operator's `volumes show` asks both VTS over TLS too (as `operator`).
    const cat = join(dir, 'catalogue.json');
    expect((await volumesCli('insert', 'T00010', '-c', cat)).code).toBe(0);
    const show = await volumesCli('show', 'T00010', '-c', cat, '-t', path, '--json');
    expect(show.code).toBe(0);
    expect(JSON.parse(show.out)).toMatchObject({ vts: { A: { reachable: true, present: true, generation: 1, consistent: true }, B: { reachable: true, present: true, generation: 1, consistent: true } } });
    // vtc1's virtual library asks the VTS over TLS too: a volume mounted through vtc2 is
    // in use, and a host's move of it into a drive is refused (NOT READY, OPERATION IN PROGRESS), not let through.
    const held = await a2.mount('T00010', { writable: false });
    const served = await serveVtcLibrary(a1, { catalogue: cat, listen: { host: '127.0.0.1', port: 0 }, log });
    stops.push(() => served.stop());
    const p = served.library.portal;
    const session = await IscsiSession.open({ host: p.host, port: p.port, initiatorName: 'iqn.2026-11.io.ptpvts:tls-host', targetName: p.iqn });
    stops.push(() => session.close());
    const changer = new IscsiPort(session, 0);
    let move = await changer.execute({ ...Cdb.moveMedium({ source: 0x1000, destination: 0x0100 }) });
    // The first command after login meets the power-on unit attention.
    for (let i = 0; i < 3 && move.status === ScsiStatus.CHECK_CONDITION && decodeSense(move.sense).key === 0x06; i++) move = await changer.execute({ ...Cdb.moveMedium({ source: 0x1000, destination: 0x0100 }) });
    expect(move.status).toBe(ScsiStatus.CHECK_CONDITION);
    expect(decodeSense(move.sense)).toMatchObject({ key: 0x02, asc: 0x00, ascq: 0x16 });
    await a2.close(held);

    // Without the key a client is refused.
    const plain = new VtsVolumes({ self: 'operator', vtcs: t.vtcs.map((v) => v.id), secret: t.secret, vts: { A: t.vts.A.listen, B: t.vts.B.listen } });
    clients.push({ disconnect: () => plain.close() });
    await expect(plain.list('A')).rejects.toThrow(/cannot be reached/);
    await until('the refusal in the log', () => refusals().some((l) => l.msg.startsWith('VTS A refused')));
    expect(refusals().every((l) => /does not speak TLS/.test(l.reason!))).toBe(true);
  }, 30_000);
});
