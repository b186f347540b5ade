/**
 * The login phase (RFC 7143 section 6.3 and 13) as two pure state machines: the target's
 * {@link TargetLogin} answers login requests; the initiator's {@link InitiatorLogin}
 * produces them. Neither touches a socket, so the negotiation matrix is testable
 * machine against machine, and the same code runs over TCP.
 */
import { LoginStage, LoginStatus, Opcode } from './constants.js';
import { CHAP_MD5, chapResponse, chapVerify, decodeBinary, encodeBinary, newChallenge, type ChapCredentials } from './chap.js';
import { LoginError } from './errors.js';
import { acceptAnswer, initialState, offerFor, respondToOffer, type LocalParams, type ParamState, type SessionParams } from './negotiate.js';
import type { LoginRequestPdu, LoginResponsePdu } from './pdu.js';
import { encodeText, parseText, TextFormatError, type TextPairs } from './text.js';
import { randomInt } from 'node:crypto';

export const SessionType = { normal: 'Normal', discovery: 'Discovery' } as const;
export type SessionType = (typeof SessionType)[keyof typeof SessionType];

/** What a completed login established. */
export interface LoginResult {
  readonly initiatorName: string;
  readonly targetName?: string;
  readonly sessionType: SessionType;
  readonly params: SessionParams;
  /** The CHAP name the initiator proved, when CHAP ran. */
  readonly chapName?: string;
}

// ------------------------------------------------------------------------ target side

/** Target CHAP configuration. */
export interface TargetChapConfig {
  /** Secret of an initiator CHAP name, or undefined for an unknown name. */
  readonly secretFor: (chapName: string) => string | undefined;
  /** What the target proves itself with when the initiator asks for mutual CHAP. */
  readonly mutual?: ChapCredentials;
}

export interface TargetLoginConfig {
  /** True when this target answers to `name`. */
  readonly hasTarget: (name: string) => boolean;
  readonly allowDiscovery: boolean;
  /** When set, every session must pass CHAP; otherwise AuthMethod None is accepted. */
  readonly chap?: TargetChapConfig;
  readonly local: LocalParams;
  readonly portalGroupTag: number;
  readonly targetAlias?: string;
  /** Most login PDUs one connection may send before we give up on it. */
  readonly maxExchanges?: number;
}

/** The target's answer to one login request. */
export interface TargetLoginStep {
  /** Fields of the login response, except the sequence numbers and TSIH the caller owns. */
  readonly response: Pick<LoginResponsePdu, 'transit' | 'continue' | 'csg' | 'nsg' | 'statusClass' | 'statusDetail'> & { readonly data: Uint8Array };
  /** Set when this response moves the connection to full feature phase. */
  readonly complete?: LoginResult;
  /** Set when the login failed: send the response, then close the connection. */
  readonly failed?: boolean;
}

type AuthState = 'start' | 'none' | 'chap-a' | 'chap-r' | 'done';

export class TargetLogin {
  private stage: number | undefined;
  private auth: AuthState = 'start';
  private chapId = 0;
  private challenge: Buffer = Buffer.alloc(0);
  private chapName: string | undefined;
  private initiatorName: string | undefined;
  private targetName: string | undefined;
  private sessionType: SessionType = SessionType.normal;
  private readonly state: ParamState = initialState();
  private exchanges = 0;
  private pending: Buffer[] = [];
  private first = true;
  private ended = false;

  constructor(private readonly config: TargetLoginConfig) {}

  /** Handles one login request; `req.opcode` is assumed to be LOGIN REQUEST. */
  step(req: LoginRequestPdu): TargetLoginStep {
    if (this.ended) return this.fail(LoginStatus.INITIATOR_ERROR);
    if (++this.exchanges > (this.config.maxExchanges ?? 32)) return this.fail(LoginStatus.INITIATOR_ERROR);
    if (req.versionMin > 0x00) return this.fail(LoginStatus.UNSUPPORTED_VERSION);
    if (req.csg === 2 || req.csg === LoginStage.FULL_FEATURE) return this.fail(LoginStatus.INITIATOR_ERROR);
    if (this.stage !== undefined && req.csg !== this.stage) return this.fail(LoginStatus.INITIATOR_ERROR);
    if (req.transit && (req.nsg <= req.csg || req.nsg === 2)) return this.fail(LoginStatus.INITIATOR_ERROR);
    if (req.transit && req.continue) return this.fail(LoginStatus.INITIATOR_ERROR);
    this.stage = req.csg;

    if (req.continue) {
      // A text split over PDUs: answer empty and wait for the rest.
      this.pending.push(Buffer.from(req.data ?? new Uint8Array(0)));
      if (this.pending.reduce((n, b) => n + b.length, 0) > 65536) return this.fail(LoginStatus.OUT_OF_RESOURCES);
      return this.reply(false, req.csg, req.csg, []);
    }
    let pairs: Array<[string, string]>;
    try {
      pairs = parseText(Buffer.concat([...this.pending, Buffer.from(req.data ?? new Uint8Array(0))]));
    } catch (e) {
      if (e instanceof TextFormatError) return this.fail(LoginStatus.INITIATOR_ERROR);
      throw e;
    }
    this.pending = [];
    const keys = new Map(pairs);
    const answer: Array<[string, string]> = [];

    if (this.first) {
      this.first = false;
      const initiatorName = keys.get('InitiatorName');
      if (!initiatorName) return this.fail(LoginStatus.MISSING_PARAMETER);
      this.initiatorName = initiatorName;
      const st = keys.get('SessionType') ?? SessionType.normal;
      if (st !== SessionType.normal && st !== SessionType.discovery) return this.fail(LoginStatus.SESSION_TYPE_NOT_SUPPORTED);
      this.sessionType = st;
      if (st === SessionType.discovery) {
        if (!this.config.allowDiscovery) return this.fail(LoginStatus.SESSION_TYPE_NOT_SUPPORTED);
      } else {
        const tn = keys.get('TargetName');
        if (!tn) return this.fail(LoginStatus.MISSING_PARAMETER);
        if (!this.config.hasTarget(tn)) return this.fail(LoginStatus.NOT_FOUND);
        this.targetName = tn;
        answer.push(['TargetPortalGroupTag', String(this.config.portalGroupTag)]);
        if (this.config.targetAlias) answer.push(['TargetAlias', this.config.targetAlias]);
      }
      if (req.csg === LoginStage.OPERATIONAL && this.config.chap) return this.fail(LoginStatus.AUTHENTICATION_FAILURE);
      if (req.csg === LoginStage.OPERATIONAL) this.auth = 'done';
    }
    for (const k of ['InitiatorName', 'SessionType', 'TargetName', 'InitiatorAlias']) keys.delete(k);

    if (req.csg === LoginStage.SECURITY) {
      const r = this.security(keys, answer);
      if (r !== undefined) return this.fail(r);
      for (const k of keys.keys()) answer.push([k, 'NotUnderstood']);
      const canTransit = this.auth === 'none' || this.auth === 'done';
      if (req.transit && canTransit) return this.transit(req, answer);
      return this.reply(false, req.csg, req.csg, answer);
    }
    // Operational stage.
    const discovery = this.sessionType === SessionType.discovery;
    answer.push(...respondToOffer([...keys.entries()], this.config.local, this.state, 'target', discovery));
    if (req.transit) return this.transit(req, answer);
    return this.reply(false, req.csg, req.csg, answer);
  }

  private security(keys: Map<string, string>, answer: Array<[string, string]>): number | undefined {
    const chap = this.config.chap;
    const method = keys.get('AuthMethod');
    keys.delete('AuthMethod');
    if (this.auth === 'start') {
      if (method === undefined) return LoginStatus.MISSING_PARAMETER;
      const offered = method.split(',');
      if (chap) {
        if (!offered.includes('CHAP')) return LoginStatus.AUTHENTICATION_FAILURE;
        answer.push(['AuthMethod', 'CHAP']);
        this.auth = 'chap-a';
        return undefined;
      }
      if (!offered.includes('None')) return LoginStatus.AUTHENTICATION_FAILURE;
      answer.push(['AuthMethod', 'None']);
      this.auth = 'none';
      return undefined;
    }
    if (method !== undefined) return LoginStatus.INITIATOR_ERROR;
    if (this.auth === 'chap-a') {
      const a = keys.get('CHAP_A');
      if (a === undefined) return undefined;
      keys.delete('CHAP_A');
      if (!a.split(',').includes(String(CHAP_MD5))) {
        answer.push(['CHAP_A', 'Reject']);
        return LoginStatus.AUTHENTICATION_FAILURE;
      }
      this.chapId = randomInt(256);
      this.challenge = newChallenge();
      answer.push(['CHAP_A', String(CHAP_MD5)], ['CHAP_I', String(this.chapId)], ['CHAP_C', encodeBinary(this.challenge)]);
      this.auth = 'chap-r';
      return undefined;
    }
    if (this.auth === 'chap-r' && chap) {
      const n = keys.get('CHAP_N');
      const r = keys.get('CHAP_R');
      if (n === undefined || r === undefined) return LoginStatus.AUTHENTICATION_FAILURE;
      keys.delete('CHAP_N');
      keys.delete('CHAP_R');
      const secret = chap.secretFor(n);
      const resp = decodeBinary(r);
      if (secret === undefined || !resp || !chapVerify(this.chapId, secret, this.challenge, resp)) return LoginStatus.AUTHENTICATION_FAILURE;
      this.chapName = n;
      const ci = keys.get('CHAP_I');
      const cc = keys.get('CHAP_C');
      keys.delete('CHAP_I');
      keys.delete('CHAP_C');
      if (ci !== undefined || cc !== undefined) {
        if (ci === undefined || cc === undefined || !chap.mutual) return LoginStatus.AUTHENTICATION_FAILURE;
        const id = /^(0|[1-9][0-9]{0,2})$/.test(ci) ? Number(ci) : NaN;
        const challenge = decodeBinary(cc);
        // A challenge equal to ours would let an attacker reflect our own question back.
        if (!(id <= 255) || !challenge || challenge.equals(this.challenge)) return LoginStatus.AUTHENTICATION_FAILURE;
        answer.push(['CHAP_N', chap.mutual.name], ['CHAP_R', encodeBinary(chapResponse(id, chap.mutual.secret, challenge))]);
      }
      this.auth = 'done';
      return undefined;
    }
    return LoginStatus.INITIATOR_ERROR;
  }

  private transit(req: LoginRequestPdu, answer: Array<[string, string]>): TargetLoginStep {
    const step = this.reply(true, req.csg, req.nsg, answer);
    if (req.nsg !== LoginStage.FULL_FEATURE) {
      this.stage = req.nsg;
      return step;
    }
    this.ended = true;
    return {
      ...step,
      complete: {
        initiatorName: this.initiatorName ?? '',
        ...(this.targetName !== undefined ? { targetName: this.targetName } : {}),
        sessionType: this.sessionType,
        params: { ...this.state },
        ...(this.chapName !== undefined ? { chapName: this.chapName } : {}),
      },
    };
  }

  private reply(transit: boolean, csg: number, nsg: number, pairs: TextPairs): TargetLoginStep {
    return { response: { transit, continue: false, csg, nsg: transit ? nsg : 0, statusClass: 0, statusDetail: 0, data: encodeText(pairs) } };
  }

  private fail(status: number): TargetLoginStep {
    this.ended = true;
    return {
      response: { transit: false, continue: false, csg: this.stage ?? 0, nsg: 0, statusClass: status >> 8, statusDetail: status & 0xff, data: new Uint8Array(0) },
      failed: true,
    };
  }
}

// --------------------------------------------------------------------- initiator side

export interface InitiatorLoginConfig {
  readonly initiatorName: string;
  readonly initiatorAlias?: string;
  /** Required for a normal session. */
  readonly targetName?: string;
  readonly sessionType: SessionType;
  /** Prove ourselves with CHAP. */
  readonly chap?: ChapCredentials;
  /** Also make the target prove itself (mutual CHAP); requires `chap`. */
  readonly mutualChap?: ChapCredentials;
  readonly local: LocalParams;
  readonly isid: bigint;
  readonly tsih: number;
  readonly cid: number;
  readonly itt: number;
  readonly cmdSN: number;
}

type InitiatorState = 'security-start' | 'chap-a' | 'chap-r' | 'chap-verify' | 'operational' | 'done';

/**
 * Produces the initiator's login requests. Call {@link InitiatorLogin.first}, send it, then
 * feed each response to {@link InitiatorLogin.next} until it returns `done`. Throws
 * {@link LoginError} when the target refuses (its status) or misbehaves (0x0200 with a
 * message: wrong mutual CHAP answer, a parameter outside the rules).
 */
export class InitiatorLogin {
  private state: InitiatorState;
  private readonly params: ParamState = initialState();
  private mutualChallenge: Buffer = Buffer.alloc(0);
  private mutualId = 0;
  private expStatSN = 0;
  private rounds = 0;
  private stage: number = LoginStage.SECURITY;

  constructor(private readonly config: InitiatorLoginConfig) {
    if (config.mutualChap && !config.chap) throw new RangeError('mutual CHAP needs CHAP credentials of the initiator too');
    this.state = 'security-start';
  }

  first(): LoginRequestPdu {
    const c = this.config;
    const pairs: Array<[string, string]> = [['InitiatorName', c.initiatorName]];
    if (c.initiatorAlias) pairs.push(['InitiatorAlias', c.initiatorAlias]);
    pairs.push(['SessionType', c.sessionType]);
    if (c.sessionType === SessionType.normal) pairs.push(['TargetName', c.targetName ?? '']);
    pairs.push(['AuthMethod', c.chap ? 'CHAP' : 'None']);
    this.state = c.chap ? 'chap-a' : 'security-start';
    // Without CHAP, ask to move on at once; the target says whether that is acceptable.
    return this.request(pairs, !c.chap, LoginStage.SECURITY, LoginStage.OPERATIONAL);
  }

  /** The next request, or the outcome once the target moved to full feature phase. */
  next(resp: LoginResponsePdu): { request: LoginRequestPdu } | { done: { params: SessionParams; tsih: number; statSN: number; expCmdSN: number; maxCmdSN: number } } {
    if (resp.opcode !== Opcode.LOGIN_RESPONSE) throw new LoginError(LoginStatus.INITIATOR_ERROR, `expected a login response, got opcode 0x${(resp as { opcode: number }).opcode.toString(16)}`);
    const status = (resp.statusClass << 8) | resp.statusDetail;
    if (status !== 0) throw new LoginError(status);
    if (resp.itt !== this.config.itt) throw new LoginError(LoginStatus.INITIATOR_ERROR, 'login response for another task tag');
    if (++this.rounds > 32) throw new LoginError(LoginStatus.INITIATOR_ERROR, 'login did not converge in 32 exchanges');
    this.expStatSN = (resp.statSN + 1) >>> 0;
    if (resp.continue) return { request: this.request([], false, this.stage, this.stage) };
    let pairs: Array<[string, string]>;
    try {
      pairs = parseText(resp.data ?? new Uint8Array(0));
    } catch (e) {
      throw new LoginError(LoginStatus.INITIATOR_ERROR, 'target sent malformed login text', { cause: e });
    }
    const keys = new Map(pairs);
    const c = this.config;

    if (resp.csg === LoginStage.SECURITY) {
      if (this.state === 'chap-a') {
        if (keys.get('AuthMethod') !== 'CHAP') throw new LoginError(LoginStatus.AUTHENTICATION_FAILURE, `target chose AuthMethod=${keys.get('AuthMethod') ?? '(none)'} where CHAP was required`);
        this.state = 'chap-r';
        return { request: this.request([['CHAP_A', String(CHAP_MD5)]], false, LoginStage.SECURITY, 0) };
      }
      if (this.state === 'chap-r') {
        const id = Number(keys.get('CHAP_I'));
        const challenge = decodeBinary(keys.get('CHAP_C') ?? '');
        if (keys.get('CHAP_A') !== String(CHAP_MD5) || !Number.isInteger(id) || id < 0 || id > 255 || !challenge) {
          throw new LoginError(LoginStatus.AUTHENTICATION_FAILURE, 'target sent an unusable CHAP challenge');
        }
        const chap = c.chap!;
        const out: Array<[string, string]> = [['CHAP_N', chap.name], ['CHAP_R', encodeBinary(chapResponse(id, chap.secret, challenge))]];
        if (c.mutualChap) {
          this.mutualId = randomInt(256);
          do this.mutualChallenge = newChallenge();
          while (this.mutualChallenge.equals(challenge));
          out.push(['CHAP_I', String(this.mutualId)], ['CHAP_C', encodeBinary(this.mutualChallenge)]);
        }
        this.state = 'chap-verify';
        return { request: this.request(out, true, LoginStage.SECURITY, LoginStage.OPERATIONAL) };
      }
      if (this.state === 'chap-verify' && c.mutualChap) {
        const n = keys.get('CHAP_N');
        const r = decodeBinary(keys.get('CHAP_R') ?? '');
        if (n !== c.mutualChap.name || !r || !chapVerify(this.mutualId, c.mutualChap.secret, this.mutualChallenge, r)) {
          throw new LoginError(LoginStatus.AUTHENTICATION_FAILURE, 'target failed mutual CHAP');
        }
        this.state = 'operational';
      } else if (this.state === 'chap-verify') {
        this.state = 'operational';
      } else if (this.state === 'security-start') {
        if (keys.has('AuthMethod') && keys.get('AuthMethod') !== 'None') throw new LoginError(LoginStatus.AUTHENTICATION_FAILURE, `target asked for AuthMethod=${keys.get('AuthMethod') ?? ''} and we have no credentials`);
      }
      if (!resp.transit) return { request: this.request([], true, LoginStage.SECURITY, LoginStage.OPERATIONAL) };
      if (resp.nsg === LoginStage.FULL_FEATURE) return this.done(resp);
      this.stage = LoginStage.OPERATIONAL;
      this.state = 'operational';
      return { request: this.request(offerFor(c.local, c.sessionType === SessionType.discovery), true, LoginStage.OPERATIONAL, LoginStage.FULL_FEATURE) };
    }
    if (resp.csg !== LoginStage.OPERATIONAL || this.state !== 'operational') throw new LoginError(LoginStatus.INITIATOR_ERROR, `target answered in stage ${resp.csg} out of order`);
    try {
      acceptAnswer(pairs, c.local, this.params, 'initiator');
    } catch (e) {
      throw new LoginError(LoginStatus.INITIATOR_ERROR, `negotiation failed: ${(e as Error).message}`, { cause: e });
    }
    if (resp.transit && resp.nsg === LoginStage.FULL_FEATURE) return this.done(resp);
    return { request: this.request([], true, LoginStage.OPERATIONAL, LoginStage.FULL_FEATURE) };
  }

  private done(resp: LoginResponsePdu): { done: { params: SessionParams; tsih: number; statSN: number; expCmdSN: number; maxCmdSN: number } } {
    this.state = 'done';
    this.params.initiatorMaxRecvDataSegmentLength = this.config.local.maxRecvDataSegmentLength;
    return { done: { params: { ...this.params }, tsih: resp.tsih, statSN: resp.statSN, expCmdSN: resp.expCmdSN, maxCmdSN: resp.maxCmdSN } };
  }

  private request(pairs: TextPairs, transit: boolean, csg: number, nsg: number): LoginRequestPdu {
    const c = this.config;
    return {
      opcode: Opcode.LOGIN_REQUEST,
      transit,
      continue: false,
      csg,
      nsg: transit ? nsg : 0,
      versionMax: 0,
      versionMin: 0,
      isid: c.isid,
      tsih: c.tsih,
      itt: c.itt,
      cid: c.cid,
      cmdSN: c.cmdSN,
      expStatSN: this.expStatSN,
      data: encodeText(pairs),
    };
  }
}
