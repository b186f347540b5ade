import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RecordSigner } from '../ptp/codec.js';
import { generateTopologyKeys } from './keys.js';
import { loadOperatorKey, loadTopology, loadVtcKeys, TopologyError, validateTopology } from './topology.js';

let dir: string;
let topo: string;
const yaml = `# the operator's comment survives
ptpId: p1
secret: "sixteen chars at least!"
vtcs:
  - { id: vtc1, listen: "127.0.0.1:7101", journalDir: ./j1 }
  - { id: vtc2, listen: "127.0.0.1:7102", journalDir: ./j2 }
vts:
  A: { listen: "127.0.0.1:7001", cacheDir: ./a, stateDir: ./as }
  B: { listen: "127.0.0.1:7002", cacheDir: ./b, stateDir: ./bs }
`;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ptpvts-keys-'));
  topo = join(dir, 'topology.yaml');
  writeFileSync(topo, yaml);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('ptpvts keys generate', () => {
  it('writes a private key per VTC and the operator, and the public keys into the topology', () => {
    const made = generateTopologyKeys(topo, join(dir, 'keys'));
    expect(made.map((k) => k.id)).toEqual(['vtc1', 'vtc2', 'operator']);
    expect(statSync(join(dir, 'keys', 'vtc1.key')).mode & 0o777).toBe(0o600);
    const text = readFileSync(topo, 'utf8');
    expect(text).toContain("# the operator's comment survives");
    expect(text).toContain('keyFile: ./keys/vtc2.key');
    const t = loadTopology(topo);
    const { keys } = loadVtcKeys(t, 'vtc2');
    const b = new RecordSigner(keys).sign({ ptpId: 'p1', election: { seq: 0, vts: 'A' as const, round: 0 }, voter: 'vtc2', keySeq: 0, choice: 'yes' as const, why: '' });
    expect(new RecordSigner(loadVtcKeys(t, 'vtc1').keys).parseBallot(b)).toEqual(b);
    expect(loadOperatorKey(t).asymmetricKeyType).toBe('ed25519');
  });
  it('never overwrites a key file without --force', () => {
    generateTopologyKeys(topo, join(dir, 'keys'));
    expect(() => generateTopologyKeys(topo, join(dir, 'keys'))).toThrow(/vtc1\.key already exists/);
    expect(generateTopologyKeys(topo, join(dir, 'keys'), true)).toHaveLength(3);
  });
});

describe('keys in the topology', () => {
  it('a VTC cannot start without keys; the error names the field and the command', () => {
    const t = loadTopology(topo);
    expect(() => loadVtcKeys(t, 'vtc1')).toThrow(TopologyError);
    expect(() => loadVtcKeys(t, 'vtc1')).toThrow(/^vtcs\.0\.publicKey: missing: .*ptpvts keys generate/);
    expect(() => loadOperatorKey(t)).toThrow(/^operator\.publicKey: missing/);
  });
  it("refuses a bad public key, two VTCs with one key, and a key file that is not that VTC's", () => {
    generateTopologyKeys(topo, join(dir, 'keys'));
    const t = loadTopology(topo);
    const doc = { ptpId: 'p1', secret: 'sixteen chars at least!', vtcs: t.vtcs.map((v) => ({ id: v.id, listen: `${v.listen.host}:${v.listen.port}`, journalDir: v.journalDir, publicKey: v.publicKey, keyFile: v.keyFile })), vts: { A: { listen: '127.0.0.1:7001', cacheDir: 'a', stateDir: 'b' }, B: { listen: '127.0.0.1:7002', cacheDir: 'a', stateDir: 'b' } } };
    const err = (d: unknown): TopologyError => {
      try {
        validateTopology(d, topo);
      } catch (e) {
        return e as TopologyError;
      }
      throw new Error('accepted');
    };
    expect(err({ ...doc, vtcs: [{ ...doc.vtcs[0], publicKey: 'abc' }, doc.vtcs[1]] }).message).toMatch(/^vtcs\.0\.publicKey: expected an Ed25519 public key/);
    expect(err({ ...doc, vtcs: [doc.vtcs[0], { ...doc.vtcs[1], publicKey: doc.vtcs[0]!.publicKey }] }).message).toMatch(/^vtcs\.1\.publicKey: the same public key as vtc1/);
    const swapped = validateTopology({ ...doc, operator: { publicKey: t.operator!.publicKey }, vtcs: [{ ...doc.vtcs[0], keyFile: doc.vtcs[1]!.keyFile }, doc.vtcs[1]] }, topo);
    expect(() => loadVtcKeys(swapped, 'vtc1')).toThrow(/^vtcs\.0\.keyFile: .*does not match the public key listed for it/);
  });
});
