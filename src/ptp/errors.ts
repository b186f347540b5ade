/** Errors of the protocol core. Every one has a stable `code`; the standard `cause` keeps the origin. */

export const PtpErrorCode = {
  invalidThreshold: 'EPTP_THRESHOLD',
  unsafeThreshold: 'EPTP_THRESHOLD_UNSAFE',
  unknownVts: 'EPTP_UNKNOWN_VTS',
  conflict: 'EPTP_CONFLICT',
  noQuorum: 'EPTP_NO_QUORUM',
  vtsUnreachable: 'EPTP_VTS_UNREACHABLE',
  invalidCommand: 'EPTP_INVALID_COMMAND',
  malformed: 'EPTP_MALFORMED',
  badMac: 'EPTP_BAD_MAC',
  badSignature: 'EPTP_BAD_SIGNATURE',
  stopped: 'EPTP_STOPPED',
  timeout: 'EPTP_TIMEOUT',
} as const;
export type PtpErrorCode = (typeof PtpErrorCode)[keyof typeof PtpErrorCode];

export class PtpError extends Error {
  override readonly name: string = 'PtpError';
  readonly code: PtpErrorCode;
  constructor(code: PtpErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
  }
}

/** A threshold outside `0 <= T < n`. */
export class InvalidThresholdError extends PtpError {
  override readonly name = 'InvalidThresholdError';
  constructor(threshold: unknown, n: number) {
    super(PtpErrorCode.invalidThreshold, `VTC agreement threshold must be an integer with 0 <= T < ${n} (the number of configured VTCs); got ${String(threshold)}`);
  }
}

/**
 * A threshold below floor(n/2) without the operator's audited override: two groups of
 * more than T VTCs need not share a VTC, so each could commit its own key (split brain).
 */
export class UnsafeThresholdError extends PtpError {
  override readonly name = 'UnsafeThresholdError';
  readonly threshold: number;
  readonly n: number;
  readonly minimum: number;
  constructor(threshold: number, n: number, minimum: number) {
    super(
      PtpErrorCode.unsafeThreshold,
      `VTC agreement threshold T = ${threshold} is below the minimum ${minimum} for n = ${n} VTCs (floor(n/2)): two groups of ${threshold + 1} VTC(s) need not share a VTC, so each could commit its own key (split brain). ` +
        'Set it only as an audited override (threshold set --force-below-half --reason TEXT)',
    );
    this.threshold = threshold;
    this.n = n;
    this.minimum = minimum;
  }
}

export class UnknownVtsError extends PtpError {
  override readonly name = 'UnknownVtsError';
  constructor(vts: unknown) {
    super(PtpErrorCode.unknownVts, `unknown VTS ${JSON.stringify(vts)}: a PtP system has exactly the VTS "A" and "B"`);
  }
}

/** Another status-changing command (or a conflicting key) is in flight for the same seq. */
export class CommandConflictError extends PtpError {
  override readonly name = 'CommandConflictError';
  constructor(message: string) {
    super(PtpErrorCode.conflict, message);
  }
}

export class NoQuorumError extends PtpError {
  override readonly name = 'NoQuorumError';
  constructor(seq: number, acks: number, threshold: number) {
    super(PtpErrorCode.noQuorum, `key ${seq} reached ${acks} VTC(s), not more than the threshold ${threshold}: the command did not go ahead`);
  }
}

export class VtsUnreachableError extends PtpError {
  override readonly name = 'VtsUnreachableError';
  constructor(vts: string, seq: number, cause?: unknown) {
    super(PtpErrorCode.vtsUnreachable, `VTS ${vts} is unreachable while executing key ${seq}; only forced mode goes ahead without it`, { cause });
  }
}

/** A command that makes no sense in the current state (e.g. taking out a VTS that is already out). */
export class InvalidCommandError extends PtpError {
  override readonly name = 'InvalidCommandError';
  constructor(message: string) {
    super(PtpErrorCode.invalidCommand, message);
  }
}

/** A record that does not decode or validate. */
export class MalformedRecordError extends PtpError {
  override readonly name = 'MalformedRecordError';
  constructor(message: string, cause?: unknown) {
    super(PtpErrorCode.malformed, message, { cause });
  }
}

export class BadMacError extends PtpError {
  override readonly name = 'BadMacError';
  constructor(what: string) {
    super(PtpErrorCode.badMac, `${what}: MAC does not verify with the cluster secret`);
  }
}

/** A key, commit record or ballot whose signature is not its author's (the VTC it names). */
export class BadSignatureError extends PtpError {
  override readonly name = 'BadSignatureError';
  readonly author: string;
  constructor(what: string, author: string) {
    super(PtpErrorCode.badSignature, `${what}: signature does not verify with the public key of ${JSON.stringify(author)}`);
    this.author = author;
  }
}

/** The engine was stopped (VTC crash or shutdown) before the command finished. */
export class EngineStoppedError extends PtpError {
  override readonly name = 'EngineStoppedError';
  constructor() {
    super(PtpErrorCode.stopped, 'the VTC agent stopped before the command finished');
  }
}
