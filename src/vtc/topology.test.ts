import { describe, expect, it } from 'vitest';
import { TopologyError, validateTopology } from '../cli/topology.js';
import { topologyBase } from '../../test/kit/topology.js';

const base = topologyBase;

const err = (doc: unknown): TopologyError => {
  try {
    validateTopology(doc, '/etc/ptp/t.yaml', () => 'a secret from a file, long enough');
  } catch (e) {
    if (e instanceof TopologyError) return e;
    throw e;
  }
  throw new Error('expected a TopologyError');
};

describe('topology validation', () => {
  it('accepts a good topology, resolving paths against the file and defaulting control ports', () => {
    const t = validateTopology(base(), '/etc/ptp/t.yaml');
    expect(t.vtcs[0]).toMatchObject({ id: 'vtc1', listen: { host: '127.0.0.1', port: 7101 }, control: { host: '127.0.0.1', port: 7201 }, journalDir: '/etc/ptp/j1' });
    expect(t.vts.B.cacheDir).toBe('/etc/ptp/b');
    expect(t.copyMode).toBe('immediate');
  });

  it('reads the secret from secretFile', () => {
    const { secret: _s, ...rest } = base();
    const t = validateTopology({ ...rest, secretFile: 'ptp.secret' }, '/etc/ptp/t.yaml', (p) => (p === '/etc/ptp/ptp.secret' ? 'file secret, long enough\n' : ''));
    expect(t.secret).toBe('file secret, long enough');
  });

  it('names the field in every error', () => {
    expect(err({ ...base(), threshold: 2 }).message).toBe('threshold: must be below the number of VTCs (2): 0 <= T < n');
    expect(err({ ...base(), vtcs: [base().vtcs[0]] }).message).toBe('vtcs: a PtP system needs at least two VTCs');
    expect(err({ ...base(), vtcs: [base().vtcs[0], { ...base().vtcs[0], listen: '127.0.0.1:7109' }] }).message).toBe('vtcs.1.id: duplicate VTC id vtc1');
    expect(err({ ...base(), vtcs: [base().vtcs[0], { ...base().vtcs[1], listen: 'localhost' }] }).message).toMatch(/^vtcs\.1\.listen: expected host:port/);
    expect(err({ ...base(), vts: { ...base().vts, B: { ...base().vts.B, listen: '127.0.0.1:7001' } } }).message).toBe('vts.B.listen: address 127.0.0.1:7001 is already used by VTS A');
    expect(err({ ...base(), vtcs: [{ ...base().vtcs[0], library: '127.0.0.1:3270' }, { ...base().vtcs[1], library: '127.0.0.1:3270' }] }).message).toBe('vtcs.1.library: address 127.0.0.1:3270 is already used by vtc1 library');
    expect(err({ ...base(), vtcs: [{ ...base().vtcs[0], library: 'nowhere' }, base().vtcs[1]] }).message).toMatch(/^vtcs\.0\.library: expected host:port/);
    expect(err({ ...base(), secret: 'short' }).field).toBe('secret');
    expect(err({ ...base(), vts: { A: base().vts.A } }).message).toMatch(/^vts\.B: /);
    expect(err({ ...base(), timing: { tick: -1 } }).field).toBe('timing.tick');
    expect(err({ ...base(), colour: 'blue' }).message).toMatch(/colour/);
    expect(err({ ...base(), copyMode: 'eventually' }).field).toBe('copyMode');
  });
});
