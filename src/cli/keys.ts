/**
 * `ptpvts keys generate`: an Ed25519 key pair for every VTC of a topology and for the
 * operator. Private keys go to files of their own (mode 0600, never overwritten without
 * --force); the topology gets each public key and the path of each key file, its comments
 * kept. Reference: docs/topology.md ("Keys").
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { parseDocument } from 'yaml';
import { exportPrivateKey, exportPublicKey, generateKeyPair } from '../ptp/mac.js';
import { UsageError } from './ops.js';
import type { Out } from './output.js';
import { loadTopology, TopologyError } from './topology.js';

/** One identity's key: where its private key went and its public key. */
export interface GeneratedKey {
  readonly id: string;
  readonly keyFile: string;
  readonly publicKey: string;
}

function writeKey(dir: string, id: string, force: boolean): GeneratedKey {
  const pair = generateKeyPair();
  const keyFile = join(dir, `${id}.key`);
  try {
    writeFileSync(keyFile, exportPrivateKey(pair.privateKey), { mode: 0o600, flag: force ? 'w' : 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new UsageError(`${keyFile} already exists: keep it, or give --force to replace every key (the old ones stop working)`);
    throw e;
  }
  return { id, keyFile, publicKey: exportPublicKey(pair.publicKey) };
}

/** A path as the topology file should name it: relative to the file when the key lies below it. */
function asWritten(topologyDir: string, path: string): string {
  const r = relative(topologyDir, path);
  return r.startsWith('..') || isAbsolute(r) ? path : `./${r}`;
}

/**
 * Adds keys to a topology document before it is written (scenario runners, benches,
 * tests): writes `<outDir>/<id>.key` for every VTC and `operator.key`, and sets
 * `publicKey`/`keyFile` in `doc`. Returns the operator's key file.
 */
export function addKeys(doc: { vtcs: { id: string; publicKey?: string; keyFile?: string }[]; operator?: { publicKey: string; keyFile?: string } }, topologyDir: string, outDir: string): GeneratedKey[] {
  mkdirSync(outDir, { recursive: true, mode: 0o700 });
  const made: GeneratedKey[] = [];
  for (const v of doc.vtcs) {
    const k = writeKey(outDir, v.id, true);
    v.publicKey = k.publicKey;
    v.keyFile = asWritten(topologyDir, k.keyFile);
    made.push(k);
  }
  const op = writeKey(outDir, 'operator', true);
  doc.operator = { publicKey: op.publicKey, keyFile: asWritten(topologyDir, op.keyFile) };
  made.push(op);
  return made;
}

/** Generates every key of the topology file at `path` and rewrites it with the public keys. Throws TopologyError or UsageError. */
export function generateTopologyKeys(path: string, outDir: string, force = false): GeneratedKey[] {
  const t = loadTopology(path);
  const doc = parseDocument(readFileSync(path, 'utf8'));
  const dir = dirname(resolve(path));
  const out = resolve(outDir);
  mkdirSync(out, { recursive: true, mode: 0o700 });
  const made: GeneratedKey[] = [];
  t.vtcs.forEach((v, i) => {
    const k = writeKey(out, v.id, force);
    doc.setIn(['vtcs', i, 'publicKey'], k.publicKey);
    doc.setIn(['vtcs', i, 'keyFile'], asWritten(dir, k.keyFile));
    made.push(k);
  });
  const op = writeKey(out, 'operator', force);
  doc.setIn(['operator', 'publicKey'], op.publicKey);
  doc.setIn(['operator', 'keyFile'], asWritten(dir, op.keyFile));
  made.push(op);
  writeFileSync(path, doc.toString());
  // What was written must load: a topology the VTCs cannot read is worse than none.
  loadTopology(path);
  return made;
}

export function registerKeyCommands(program: Command, out: Out): void {
  const keys = program.command('keys').description('signing keys of the VTCs and the operator');
  keys
    .command('generate')
    .description('generate an Ed25519 key pair for every VTC of a topology and for the operator; write the private keys to --out and the public keys into the topology')
    .requiredOption('-t, --topology <file>', 'topology file (rewritten with the public keys)')
    .requiredOption('--out <dir>', 'directory for the private key files (created, mode 0700)')
    .option('--force', 'replace key files that exist (the old keys stop working)', false)
    .action((o: { topology: string; out: string; force: boolean }) => {
      let made: GeneratedKey[];
      try {
        made = generateTopologyKeys(o.topology, o.out, o.force);
      } catch (e) {
        if (e instanceof TopologyError) throw new UsageError(`${o.topology}: ${e.message}`);
        throw e;
      }
      for (const k of made) out.line(`${k.id}: private key in ${k.keyFile}, public key ${k.publicKey}`);
      out.line(`Wrote the public keys and key file paths into ${o.topology}. Copy each VTC's key file to its machine only, and operator.key to the operator's console only.`);
    });
}
