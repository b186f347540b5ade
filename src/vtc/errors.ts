/** Errors of the VTC agent and its links. Every one has a stable `code`; `cause` keeps the origin. */

export const VtcErrorCode = {
  unreachable: 'EVTC_UNREACHABLE',
  timeout: 'EVTC_TIMEOUT',
  remote: 'EVTC_REMOTE',
  offline: 'EVTC_OFFLINE',
  stopped: 'EVTC_STOPPED',
  conflict: 'EVTC_CONFLICT',
  badRequest: 'EVTC_BAD_REQUEST',
  notAllowed: 'EVTC_NOT_ALLOWED',
  operatorAuth: 'EVTC_OPERATOR_AUTH',
  copy: 'EVTC_COPY',
} as const;
export type VtcErrorCode = (typeof VtcErrorCode)[keyof typeof VtcErrorCode];

export class VtcError extends Error {
  override readonly name: string = 'VtcError';
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
  }
}

/** A VTS, a VTC or a control endpoint could not be reached (refused, reset, closed). */
export class UnreachableError extends VtcError {
  override readonly name = 'UnreachableError';
  constructor(what: string, cause?: unknown) {
    super(VtcErrorCode.unreachable, `${what} cannot be reached${cause instanceof Error ? `: ${cause.message}` : ''}`, { cause });
  }
}

export class RpcTimeoutError extends VtcError {
  override readonly name = 'RpcTimeoutError';
  constructor(what: string, ms: number) {
    super(VtcErrorCode.timeout, `${what} did not answer within ${ms} ms`);
  }
}

/**
 * The far side answered with an error. `code` is the remote error's code (a VtsErrorCode,
 * a PtpErrorCode...), `remoteName` its class name, so callers branch as if it were local.
 */
export class RemoteError extends VtcError {
  override readonly name = 'RemoteError';
  readonly remoteName: string;
  constructor(code: string, remoteName: string, message: string) {
    super(code, message);
    this.remoteName = remoteName;
  }
}

/** Host I/O refused because the PtP system (as this VTC sees it) is off-line or no VTS can serve it. */
export class PtpOfflineError extends VtcError {
  override readonly name = 'PtpOfflineError';
  constructor(reason: string) {
    super(VtcErrorCode.offline, `host I/O refused: ${reason}`);
  }
}

export class AgentStoppedError extends VtcError {
  override readonly name = 'AgentStoppedError';
  constructor(self: string) {
    super(VtcErrorCode.stopped, `VTC ${self} is stopped`);
  }
}

export class CommandInFlightError extends VtcError {
  override readonly name = 'CommandInFlightError';
  constructor(self: string, what: string) {
    super(VtcErrorCode.conflict, `VTC ${self} is still running the operator command ${what}: wait for it, then retry`);
  }
}

export class BadRequestError extends VtcError {
  override readonly name = 'BadRequestError';
  constructor(message: string, cause?: unknown) {
    super(VtcErrorCode.badRequest, message, { cause });
  }
}

/** An operator request without a valid, fresh operator signature (unsigned, forged, replayed or stale). */
export class OperatorAuthError extends VtcError {
  override readonly name = 'OperatorAuthError';
  readonly reason: string;
  constructor(reason: string, message: string) {
    super(VtcErrorCode.operatorAuth, message);
    this.reason = reason;
  }
}

export class NotAllowedError extends VtcError {
  override readonly name = 'NotAllowedError';
  constructor(caller: string, method: string) {
    super(VtcErrorCode.notAllowed, `${caller} may not call ${method}`);
  }
}

export class CopyError extends VtcError {
  override readonly name = 'CopyError';
  constructor(volser: string, from: string, to: string, cause?: unknown) {
    super(VtcErrorCode.copy, `copy of ${volser} from VTS ${from} to VTS ${to} failed${cause instanceof Error ? `: ${cause.message}` : ''}`, { cause });
  }
}

/** The code of any error, for logs and wire answers. */
export function codeOf(e: unknown): string {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : 'EUNKNOWN';
}
