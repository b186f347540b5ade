/**
 * What goes in and out of the VTC protocol engine: its timers and configuration, the inputs
 * a driver feeds it ({@link EngineInput}, one at a time through `VtcEngine.step`), and the
 * effects it asks the driver to perform ({@link Effect}), whose results come back as inputs.
 */
import type { PtpError } from '../errors.js';
import type { RecordKeys } from '../mac.js';
import type { PeerMessage } from '../messages.js';
import type { BrokenRule } from '../rules.js';
import type { JournalRecord, Mode, PtpStatus, ShutdownKey, SignedBallot, VtsName, VtsView } from '../types.js';
import type { VoteTallyApi, VoteTallyOptions } from '../../hotpath/ballots.js';

/** Protocol timers, in the Clock's milliseconds. */
export interface Timing {
  /** How often the driver calls `tick` (heartbeats go out at every tick). */
  readonly tick: number;
  readonly heartbeatTimeout: number;
  readonly ackTimeout: number;
  readonly vtsOpTimeout: number;
  readonly returnGrace: number;
  readonly electionTimeout: number;
  /** How long an uncommitted key may sit before another VTC takes its command over. */
  readonly pendingTimeout: number;
  readonly helloInterval: number;
  readonly expediteTimeout: number;
  /** Per-rank delay before an automatic action, so the first VTC to see a change coordinates it. */
  readonly stagger: number;
}

export const DEFAULT_TIMING: Timing = {
  tick: 100,
  heartbeatTimeout: 500,
  ackTimeout: 1000,
  vtsOpTimeout: 30_000,
  returnGrace: 2000,
  electionTimeout: 2000,
  pendingTimeout: 5000,
  helloInterval: 1000,
  expediteTimeout: 10_000,
  stagger: 200,
};

export interface EngineConfig {
  readonly ptpId: string;
  /** Every configured VTC, in a fixed order shared by all: the index is the voter id. */
  readonly vtcs: readonly string[];
  readonly self: string;
  readonly timing: Timing;
}

export type TallyFactory = (options: VoteTallyOptions) => VoteTallyApi;

export interface EngineDeps {
  /** This VTC's signing key and every VTC's public key: keys, commit records and ballots are signed by their author. */
  readonly keys: RecordKeys;
  /** A vote tally per election: the native tally in production, the JS reference in simulation. */
  readonly tally: TallyFactory;
  /** Test-only: break a voting rule on purpose. */
  readonly broken?: BrokenRule;
}

/** An operation the engine asks of a VTS. Every one is idempotent for the same seq. */
export type VtsOp =
  | { readonly op: 'status' }
  /**
   * Record `seq` as the newest key seen while in operation; fence host I/O older than it.
   * `bootId`: the boot the coordinator saw when it planned the key; a VTS that restarted
   * since refuses (a key that does not judge the image must not be recorded on it).
   * `minSeq`: the newest seq the VTS confirmed recording; a VTS reporting less (an older
   * image) refuses. `start` carries both when it places a VTS the chain holds as current.
   */
  | { readonly op: 'record'; readonly seq: number; readonly mac?: string; readonly bootId?: string; readonly minSeq?: number }
  /** Leave operation per mode (MODE_POLICY), draining copies with `drainTo` first where the mode says so; records `seq`. */
  | {
      readonly op: 'stop';
      readonly seq: number;
      readonly mac?: string;
      readonly mode: Mode;
      readonly expediteTimeout: number;
      readonly drainTo: VtsName | null;
      /** The boot of the VTS the coordinator saw when it planned the key; a VTS that restarted since refuses (nothing is recorded on an unjudged image). */
      readonly bootId?: string;
      /** The newest seq the VTS confirmed recording, known to the coordinator: a VTS reporting less is an older image and refuses. */
      readonly minSeq?: number;
    }
  /**
   * Enter operation (no-op when in); records `seq`. With `seq` null it records nothing: a VTS
   * placed in operation alone and not elected keeps the last key seq it came back with, the
   * evidence every later election judges it by (recording the key would pass a restored old
   * image off as current).
   */
  | { readonly op: 'start'; readonly seq: number | null; readonly mac?: string; readonly bootId?: string; readonly minSeq?: number }
  /** Reconcile tokens with the other VTS (max generation wins, copies queued); records `seq` on both. */
  | { readonly op: 'reconcile'; readonly seq: number; readonly mac?: string };

export type VtsResult = { readonly ok: true; readonly view: VtsView } | { readonly ok: false; readonly error: string };

export type OperatorCommand =
  | { readonly command: 'vts-out'; readonly vts: string; readonly mode: Mode }
  | { readonly command: 'vts-in'; readonly vts: string }
  | { readonly command: 'ptp-shutdown'; readonly mode: Mode }
  | { readonly command: 'ptp-start' }
  /**
   * `belowHalf`: the audited override that lets T below floor(n/2) through; `mode` forced:
   * goes ahead without more than T acknowledgements (the recovery path when T = n - 1 and
   * a VTC is lost). Either needs `note`, the operator's reason, recorded in the key.
   */
  | { readonly command: 'threshold-set'; readonly threshold: number; readonly mode?: Mode; readonly belowHalf?: boolean; readonly note?: string }
  /** The audited forced override: place `vts` on-line alone without an election. */
  | { readonly command: 'override'; readonly vts: string; readonly note?: string };

export type CommandResult = { readonly ok: true; readonly seq: number; readonly key: ShutdownKey } | { readonly ok: false; readonly error: PtpError };

export type Effect =
  | { readonly kind: 'send'; readonly to: string; readonly msg: PeerMessage }
  | { readonly kind: 'append'; readonly record: JournalRecord; readonly token: number }
  | { readonly kind: 'vts'; readonly vts: VtsName; readonly op: VtsOp; readonly token: number }
  | { readonly kind: 'result'; readonly commandId: string; readonly result: CommandResult }
  | { readonly kind: 'status'; readonly status: PtpStatus; readonly seq: number }
  /** A ballot this VTC cast. */
  | { readonly kind: 'ballot'; readonly ballot: SignedBallot }
  /** Ballots of other VTCs that reached this one, authenticated (on their own, on an acknowledgement, in a commit): for status and audit. */
  | { readonly kind: 'seen'; readonly ballots: readonly SignedBallot[] };


export interface EngineStats {
  rejected: number;
  rejectedReasons: Record<string, number>;
  ballotsCast: number;
  keysCoordinated: number;
}

/**
 * Every input of the engine, as one tagged union: `VtcEngine.step` takes one at a time. Each
 * but `stop` carries the current time of the driver's clock (`now`).
 */
export type EngineInput =
  /** Rebuilds state from the durable journal (oldest first): once, before any other input. */
  | { readonly kind: 'restore'; readonly records: readonly JournalRecord[]; readonly now: number }
  /** The driver's timer: every `Timing.tick`. */
  | { readonly kind: 'tick'; readonly now: number }
  /** A message from an authenticated peer; its content is still untrusted. */
  | { readonly kind: 'receive'; readonly from: string; readonly value: unknown; readonly now: number }
  /** The record of `append` effect `token` is durable. */
  | { readonly kind: 'appended'; readonly token: number; readonly now: number }
  /** The VTS operation of `vts` effect `token` finished (or failed). */
  | { readonly kind: 'vts-result'; readonly token: number; readonly result: VtsResult; readonly now: number }
  /** An operator command taken by this VTC; answered by a `result` effect with the same id. */
  | { readonly kind: 'command'; readonly commandId: string; readonly command: OperatorCommand; readonly now: number }
  /** The VTC stops (crash or shutdown). */
  | { readonly kind: 'stop' };

/** The kinds of {@link EngineInput}. */
export const ENGINE_INPUTS = ['restore', 'tick', 'receive', 'appended', 'vts-result', 'command', 'stop'] as const satisfies readonly EngineInput['kind'][];
