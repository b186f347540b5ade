import { describe, expect, it } from 'vitest';
import { LoginStatus, Opcode } from './constants.js';
import { LoginError } from './errors.js';
import { InitiatorLogin, SessionType, TargetLogin, type TargetLoginConfig } from './login.js';
import { localParams, type SessionParams } from './negotiate.js';
import type { LoginRequestPdu, LoginResponsePdu } from './pdu.js';
import { encodeText } from './text.js';
import type { ChapCredentials } from './chap.js';

const IQN = 'iqn.2026-11.io.ptpvts:lib0';

function run(target: Partial<TargetLoginConfig>, init: { chap?: ChapCredentials; mutualChap?: ChapCredentials; headerDigest?: boolean; dataDigest?: boolean; targetName?: string; discovery?: boolean }): { params: SessionParams } {
  const t = new TargetLogin({ hasTarget: (n) => n === IQN, allowDiscovery: true, local: localParams({ headerDigests: ['CRC32C', 'None'], dataDigests: ['CRC32C', 'None'], maxRecvDataSegmentLength: 65536 }), portalGroupTag: 1, ...target });
  const i = new InitiatorLogin({
    initiatorName: 'iqn.2026-11.io.ptpvts:init',
    targetName: init.targetName ?? IQN,
    sessionType: init.discovery ? SessionType.discovery : SessionType.normal,
    ...(init.chap ? { chap: init.chap } : {}),
    ...(init.mutualChap ? { mutualChap: init.mutualChap } : {}),
    local: localParams({ headerDigests: init.headerDigest ? ['CRC32C'] : ['None'], dataDigests: init.dataDigest ? ['CRC32C'] : ['None'], maxRecvDataSegmentLength: 131072 }),
    isid: 0x800000000001n,
    tsih: 0,
    cid: 0,
    itt: 7,
    cmdSN: 1,
  });
  let req: LoginRequestPdu = i.first();
  for (let n = 0; n < 20; n++) {
    const step = t.step(req);
    const resp: LoginResponsePdu = { opcode: Opcode.LOGIN_RESPONSE, ...step.response, versionMax: 0, versionActive: 0, isid: req.isid, tsih: step.complete ? 1 : 0, itt: req.itt, statSN: n, expCmdSN: 1, maxCmdSN: 32 };
    const next = i.next(resp);
    if ('done' in next) {
      expect(step.complete).toBeDefined();
      // Both ends must agree on every parameter.
      expect(next.done.params).toEqual(step.complete!.params);
      return { params: next.done.params };
    }
    req = next.request;
  }
  throw new Error('login did not finish');
}

const alice: ChapCredentials = { name: 'alice', secret: 'alice-secret-123' };
const tgt: ChapCredentials = { name: 'lib0', secret: 'target-secret-456' };
const chapTarget = { chap: { secretFor: (n: string) => (n === 'alice' ? alice.secret : undefined), mutual: tgt } };

describe('login negotiation matrix', () => {
  for (const auth of ['none', 'chap', 'mutual'] as const) {
    for (const hd of [false, true]) {
      for (const dd of [false, true]) {
        it(`auth=${auth} headerDigest=${hd} dataDigest=${dd}`, () => {
          const { params } = run(auth === 'none' ? {} : chapTarget, { ...(auth !== 'none' ? { chap: alice } : {}), ...(auth === 'mutual' ? { mutualChap: tgt } : {}), headerDigest: hd, dataDigest: dd });
          expect(params.headerDigest).toBe(hd);
          expect(params.dataDigest).toBe(dd);
          expect(params.targetMaxRecvDataSegmentLength).toBe(65536);
          expect(params.initiatorMaxRecvDataSegmentLength).toBe(131072);
          expect(params.errorRecoveryLevel).toBe(0);
          expect(params.firstBurstLength).toBeLessThanOrEqual(params.maxBurstLength);
        });
      }
    }
  }

  const refused = (fn: () => unknown, status: number): void => {
    const e = (() => { try { fn(); } catch (x) { return x; } })();
    expect(e).toBeInstanceOf(LoginError);
    expect((e as LoginError).status).toBe(status);
  };

  it('refuses a wrong secret with AUTHENTICATION FAILURE (0x0201)', () => refused(() => run(chapTarget, { chap: { name: 'alice', secret: 'wrong-secret-000' } }), LoginStatus.AUTHENTICATION_FAILURE));
  it('refuses an unknown CHAP name', () => refused(() => run(chapTarget, { chap: { name: 'mallory', secret: 'x'.repeat(12) } }), LoginStatus.AUTHENTICATION_FAILURE));
  it('refuses a login without credentials when CHAP is required', () => refused(() => run(chapTarget, {}), LoginStatus.AUTHENTICATION_FAILURE));
  it('detects a target that fails mutual CHAP', () => refused(() => run(chapTarget, { chap: alice, mutualChap: { name: 'lib0', secret: 'not-the-target-secret' } }), LoginStatus.AUTHENTICATION_FAILURE));
  it('refuses mutual CHAP when the target has no credentials of its own', () => refused(() => run({ chap: { secretFor: () => alice.secret } }, { chap: alice, mutualChap: tgt }), LoginStatus.AUTHENTICATION_FAILURE));
  it('refuses an unknown target name with NOT FOUND', () => refused(() => run({}, { targetName: 'iqn.2026-11.io.ptpvts:other' }), LoginStatus.NOT_FOUND));
  it('runs a discovery session', () => expect(run({}, { discovery: true }).params.errorRecoveryLevel).toBe(0));
  it('refuses discovery where it is disabled', () => refused(() => run({ allowDiscovery: false }, { discovery: true }), LoginStatus.SESSION_TYPE_NOT_SUPPORTED));
  it('refuses a digest the target does not offer', () => {
    expect(() => run({ local: localParams({ headerDigests: ['None'] }) }, { headerDigest: true })).toThrow(LoginError);
  });

  describe('target side, out-of-order and malformed logins', () => {
    const base: LoginRequestPdu = { opcode: Opcode.LOGIN_REQUEST, transit: true, continue: false, csg: 0, nsg: 1, versionMax: 0, versionMin: 0, isid: 1n, tsih: 0, itt: 1, cid: 0, cmdSN: 1, expStatSN: 0 };
    const target = (): TargetLogin => new TargetLogin({ hasTarget: (n) => n === IQN, allowDiscovery: true, local: localParams(), portalGroupTag: 1 });
    const status = (t: TargetLogin, r: LoginRequestPdu): number => {
      const s = t.step(r);
      return (s.response.statusClass << 8) | s.response.statusDetail;
    };
    const text = (...p: Array<[string, string]>): Uint8Array => encodeText(p);
    it('wants InitiatorName and TargetName', () => {
      expect(status(target(), { ...base, data: text(['AuthMethod', 'None']) })).toBe(LoginStatus.MISSING_PARAMETER);
      expect(status(target(), { ...base, data: text(['InitiatorName', 'i'], ['AuthMethod', 'None']) })).toBe(LoginStatus.MISSING_PARAMETER);
    });
    it('refuses stage jumps, reserved stages and unsupported versions', () => {
      const keys = text(['InitiatorName', 'i'], ['TargetName', IQN], ['AuthMethod', 'None']);
      expect(status(target(), { ...base, csg: 3, data: keys })).toBe(LoginStatus.INITIATOR_ERROR);
      expect(status(target(), { ...base, nsg: 2, data: keys })).toBe(LoginStatus.INITIATOR_ERROR);
      expect(status(target(), { ...base, versionMin: 2, data: keys })).toBe(LoginStatus.UNSUPPORTED_VERSION);
      const t = target();
      expect(status(t, { ...base, data: keys })).toBe(0);
      // Back to the security stage after the target moved on.
      expect(status(t, { ...base, csg: 0, data: text() })).toBe(LoginStatus.INITIATOR_ERROR);
    });
    it('refuses bad text and an unknown session type', () => {
      expect(status(target(), { ...base, data: Buffer.from('garbage\0') })).toBe(LoginStatus.INITIATOR_ERROR);
      expect(status(target(), { ...base, data: text(['InitiatorName', 'i'], ['SessionType', 'Weird']) })).toBe(LoginStatus.SESSION_TYPE_NOT_SUPPORTED);
    });
    it('answers unknown operational keys NotUnderstood and bad values Reject', () => {
      const t = target();
      t.step({ ...base, data: text(['InitiatorName', 'i'], ['TargetName', IQN], ['AuthMethod', 'None']) });
      const s = t.step({ ...base, csg: 1, nsg: 3, data: text(['X-Foo', '1'], ['MaxBurstLength', '12'], ['ImmediateData', 'Maybe']) });
      expect(Buffer.from(s.response.data).toString()).toBe('X-Foo=NotUnderstood\0MaxBurstLength=Reject\0ImmediateData=Reject\0');
      expect(s.complete?.params.maxBurstLength).toBe(262144);
    });
  });
});
