/**
 * Operational parameter negotiation (RFC 7143 section 13), the same rules at both ends:
 * the responder computes results with {@link respondToOffer}, the originator checks the
 * answer with {@link acceptAnswer}, and both end with the same {@link SessionParams}.
 */
import type { TextPairs } from './text.js';

/** What a session runs with once login is over. */
export interface SessionParams {
  readonly headerDigest: boolean;
  readonly dataDigest: boolean;
  /** Largest data segment the initiator accepts (limits the target's Data-In, NOP-In...). */
  readonly initiatorMaxRecvDataSegmentLength: number;
  /** Largest data segment the target accepts (limits immediate data, Data-Out...). */
  readonly targetMaxRecvDataSegmentLength: number;
  readonly maxBurstLength: number;
  readonly firstBurstLength: number;
  readonly immediateData: boolean;
  readonly initialR2T: boolean;
  readonly maxOutstandingR2T: number;
  readonly dataPDUInOrder: boolean;
  readonly dataSequenceInOrder: boolean;
  readonly errorRecoveryLevel: number;
  readonly defaultTime2Wait: number;
  readonly defaultTime2Retain: number;
  readonly maxConnections: number;
}

export const DEFAULT_PARAMS: SessionParams = {
  headerDigest: false,
  dataDigest: false,
  initiatorMaxRecvDataSegmentLength: 8192,
  targetMaxRecvDataSegmentLength: 8192,
  maxBurstLength: 262144,
  firstBurstLength: 65536,
  immediateData: true,
  initialR2T: true,
  maxOutstandingR2T: 1,
  dataPDUInOrder: true,
  dataSequenceInOrder: true,
  errorRecoveryLevel: 0,
  defaultTime2Wait: 2,
  defaultTime2Retain: 20,
  maxConnections: 1,
};

type Rule =
  | { readonly kind: 'min' | 'max'; readonly field: keyof SessionParams; readonly lo: number; readonly hi: number }
  | { readonly kind: 'or' | 'and'; readonly field: keyof SessionParams }
  | { readonly kind: 'digest'; readonly field: 'headerDigest' | 'dataDigest' }
  | { readonly kind: 'declarative'; readonly lo: number; readonly hi: number };

/** Negotiable keys of a normal session's operational stage. */
export const OPERATIONAL_KEYS: ReadonlyMap<string, Rule> = new Map<string, Rule>([
  ['HeaderDigest', { kind: 'digest', field: 'headerDigest' }],
  ['DataDigest', { kind: 'digest', field: 'dataDigest' }],
  ['MaxRecvDataSegmentLength', { kind: 'declarative', lo: 512, hi: 0xffffff }],
  ['MaxBurstLength', { kind: 'min', field: 'maxBurstLength', lo: 512, hi: 0xffffff }],
  ['FirstBurstLength', { kind: 'min', field: 'firstBurstLength', lo: 512, hi: 0xffffff }],
  ['ImmediateData', { kind: 'and', field: 'immediateData' }],
  ['InitialR2T', { kind: 'or', field: 'initialR2T' }],
  ['MaxOutstandingR2T', { kind: 'min', field: 'maxOutstandingR2T', lo: 1, hi: 65535 }],
  ['DataPDUInOrder', { kind: 'or', field: 'dataPDUInOrder' }],
  ['DataSequenceInOrder', { kind: 'or', field: 'dataSequenceInOrder' }],
  ['ErrorRecoveryLevel', { kind: 'min', field: 'errorRecoveryLevel', lo: 0, hi: 2 }],
  ['DefaultTime2Wait', { kind: 'max', field: 'defaultTime2Wait', lo: 0, hi: 3600 }],
  ['DefaultTime2Retain', { kind: 'min', field: 'defaultTime2Retain', lo: 0, hi: 3600 }],
  ['MaxConnections', { kind: 'min', field: 'maxConnections', lo: 1, hi: 65535 }],
]);

/** Keys a discovery session negotiates; the others are irrelevant there. */
const DISCOVERY_KEYS = new Set(['HeaderDigest', 'DataDigest', 'MaxRecvDataSegmentLength', 'DefaultTime2Wait', 'DefaultTime2Retain', 'ErrorRecoveryLevel']);

/** The local side's wishes: what it offers as originator and accepts as responder. */
export interface LocalParams extends SessionParams {
  /** This side's own MaxRecvDataSegmentLength. */
  readonly maxRecvDataSegmentLength: number;
  /** Digests this side supports, in order of preference. */
  readonly headerDigests: readonly DigestName[];
  readonly dataDigests: readonly DigestName[];
}
export type DigestName = 'CRC32C' | 'None';

export class NegotiationError extends Error {
  override readonly name = 'NegotiationError';
  readonly code = 'EPROTO';
}

const yes = (b: boolean): string => (b ? 'Yes' : 'No');
function parseBool(v: string): boolean | undefined {
  return v === 'Yes' ? true : v === 'No' ? false : undefined;
}
function parseNum(v: string, lo: number, hi: number): number | undefined {
  if (!/^(0|[1-9][0-9]{0,9}|0x[0-9a-fA-F]{1,8})$/.test(v)) return undefined;
  const n = Number(v);
  return n >= lo && n <= hi ? n : undefined;
}

/** Mutable accumulator of one side's view of negotiation results. */
export type ParamState = { -readonly [K in keyof SessionParams]: SessionParams[K] };

export function initialState(): ParamState {
  return { ...DEFAULT_PARAMS };
}

/**
 * Responder side: answers each offered key and records the results in `state`.
 * `role` says which MaxRecvDataSegmentLength the offer declares. Unknown keys answer
 * NotUnderstood; keys that do not apply to a discovery session answer Irrelevant;
 * out-of-range or unparseable values answer Reject and leave the default in force.
 */
export function respondToOffer(
  offered: TextPairs,
  local: LocalParams,
  state: ParamState,
  role: 'target' | 'initiator',
  discovery: boolean,
): Array<[string, string]> {
  const answer: Array<[string, string]> = [];
  for (const [key, value] of offered) {
    const rule = OPERATIONAL_KEYS.get(key);
    if (!rule) {
      answer.push([key, 'NotUnderstood']);
      continue;
    }
    if (discovery && !DISCOVERY_KEYS.has(key)) {
      answer.push([key, 'Irrelevant']);
      continue;
    }
    switch (rule.kind) {
      case 'declarative': {
        const n = parseNum(value, rule.lo, rule.hi);
        if (n === undefined) {
          answer.push([key, 'Reject']);
          break;
        }
        if (role === 'target') state.initiatorMaxRecvDataSegmentLength = n;
        else state.targetMaxRecvDataSegmentLength = n;
        // A declaration needs no answer, but the responder declares its own in turn.
        answer.push([key, String(local.maxRecvDataSegmentLength)]);
        if (role === 'target') state.targetMaxRecvDataSegmentLength = local.maxRecvDataSegmentLength;
        else state.initiatorMaxRecvDataSegmentLength = local.maxRecvDataSegmentLength;
        break;
      }
      case 'min':
      case 'max': {
        const n = parseNum(value, rule.lo, rule.hi);
        if (n === undefined) {
          answer.push([key, 'Reject']);
          break;
        }
        const mine = local[rule.field] as number;
        const result = rule.kind === 'min' ? Math.min(n, mine) : Math.max(n, mine);
        (state as Record<string, unknown>)[rule.field] = result;
        answer.push([key, String(result)]);
        break;
      }
      case 'or':
      case 'and': {
        const b = parseBool(value);
        if (b === undefined) {
          answer.push([key, 'Reject']);
          break;
        }
        const mine = local[rule.field] as boolean;
        const result = rule.kind === 'or' ? b || mine : b && mine;
        (state as Record<string, unknown>)[rule.field] = result;
        answer.push([key, yes(result)]);
        break;
      }
      case 'digest': {
        const offers = value.split(',');
        const supported = rule.field === 'headerDigest' ? local.headerDigests : local.dataDigests;
        const pick = offers.find((o): o is DigestName => (supported as readonly string[]).includes(o));
        if (!pick) {
          answer.push([key, 'Reject']);
          break;
        }
        state[rule.field] = pick === 'CRC32C';
        answer.push([key, pick]);
        break;
      }
    }
  }
  if (state.firstBurstLength > state.maxBurstLength) state.firstBurstLength = state.maxBurstLength;
  return answer;
}

/** Originator side: the keys to offer for `local`. */
export function offerFor(local: LocalParams, discovery: boolean): Array<[string, string]> {
  const all: Array<[string, string]> = [
    ['HeaderDigest', local.headerDigests.join(',')],
    ['DataDigest', local.dataDigests.join(',')],
    ['MaxRecvDataSegmentLength', String(local.maxRecvDataSegmentLength)],
    ['DefaultTime2Wait', String(local.defaultTime2Wait)],
    ['DefaultTime2Retain', String(local.defaultTime2Retain)],
    ['ErrorRecoveryLevel', String(local.errorRecoveryLevel)],
  ];
  if (discovery) return all;
  return [
    ...all,
    ['MaxConnections', String(local.maxConnections)],
    ['InitialR2T', yes(local.initialR2T)],
    ['ImmediateData', yes(local.immediateData)],
    ['MaxBurstLength', String(local.maxBurstLength)],
    ['FirstBurstLength', String(local.firstBurstLength)],
    ['MaxOutstandingR2T', String(local.maxOutstandingR2T)],
    ['DataPDUInOrder', yes(local.dataPDUInOrder)],
    ['DataSequenceInOrder', yes(local.dataSequenceInOrder)],
  ];
}

/**
 * Originator side: checks the responder's answers against what was offered and records
 * results. Throws {@link NegotiationError} when an answer breaks the key's rule (a result
 * outside what the rule allows, an unoffered digest, a Reject of a key we need).
 */
export function acceptAnswer(answers: TextPairs, local: LocalParams, state: ParamState, role: 'initiator' | 'target'): void {
  for (const [key, value] of answers) {
    const rule = OPERATIONAL_KEYS.get(key);
    if (!rule) continue;
    if (value === 'NotUnderstood' || value === 'Irrelevant') continue;
    if (value === 'Reject') {
      if (rule.kind === 'digest') throw new NegotiationError(`${key}: peer rejected every offered digest`);
      continue;
    }
    switch (rule.kind) {
      case 'declarative': {
        const n = parseNum(value, rule.lo, rule.hi);
        if (n === undefined) throw new NegotiationError(`${key}=${value} is out of range`);
        if (role === 'initiator') state.targetMaxRecvDataSegmentLength = n;
        else state.initiatorMaxRecvDataSegmentLength = n;
        break;
      }
      case 'min':
      case 'max': {
        const n = parseNum(value, rule.lo, rule.hi);
        const mine = local[rule.field] as number;
        if (n === undefined || (rule.kind === 'min' ? n > mine : n < mine)) throw new NegotiationError(`${key}=${value} breaks the ${rule.kind} rule against our ${mine}`);
        (state as Record<string, unknown>)[rule.field] = n;
        break;
      }
      case 'or':
      case 'and': {
        const b = parseBool(value);
        const mine = local[rule.field] as boolean;
        if (b === undefined || (rule.kind === 'or' && mine && !b) || (rule.kind === 'and' && !mine && b)) throw new NegotiationError(`${key}=${value} breaks the ${rule.kind} rule`);
        (state as Record<string, unknown>)[rule.field] = b;
        break;
      }
      case 'digest': {
        const offered = rule.field === 'headerDigest' ? local.headerDigests : local.dataDigests;
        if (!(offered as readonly string[]).includes(value)) throw new NegotiationError(`${key}=${value} was not offered`);
        state[rule.field] = value === 'CRC32C';
        break;
      }
    }
  }
  if (role === 'initiator') state.initiatorMaxRecvDataSegmentLength = local.maxRecvDataSegmentLength;
  if (state.firstBurstLength > state.maxBurstLength) state.firstBurstLength = state.maxBurstLength;
}

/** Local parameters from partial wishes, filling in RFC defaults. */
export function localParams(p: Partial<LocalParams> = {}): LocalParams {
  return {
    ...DEFAULT_PARAMS,
    maxRecvDataSegmentLength: 262144,
    headerDigests: ['None'],
    dataDigests: ['None'],
    ...p,
  };
}
