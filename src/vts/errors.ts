/**
 * Errors of the VTS unit. Host-facing refusals (out of operation, mount limits, aborted
 * mounts) are distinct classes so a VTC can map each to the answer a host expects; device
 * failures underneath keep the device client's error as `cause`.
 */

/** Codes of {@link VtsError}, stable for callers that branch on them. */
export const VtsErrorCode = {
  outOfOperation: 'EVTSOUT',
  mountsRefused: 'EMOUNTREFUSED',
  mountLimit: 'EMOUNTLIMIT',
  volumeNotFound: 'ENOVOLUME',
  volumeInUse: 'EVOLINUSE',
  volumeNotConsistent: 'EVOLBEHIND',
  mountAborted: 'EMOUNTABORTED',
  badHandle: 'EBADHANDLE',
  readOnlyMount: 'EREADONLY',
  fenced: 'EFENCED',
  staleGeneration: 'ESTALEGEN',
  cacheFull: 'ECACHEFULL',
  badVolser: 'EBADVOLSER',
  badVolumeData: 'EBADVOLDATA',
  premigration: 'EPREMIGRATE',
  recall: 'ERECALL',
  noCartridge: 'ENOCARTRIDGE',
  closed: 'ECLOSED',
  state: 'ESTATE',
} as const;
export type VtsErrorCode = (typeof VtsErrorCode)[keyof typeof VtsErrorCode];

/** Base of every error the VTS unit raises itself. */
export class VtsError extends Error {
  override readonly name: string = 'VtsError';
  readonly code: VtsErrorCode;

  constructor(code: VtsErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
  }
}

/** The VTS is out of operation: every host operation and every key record is refused. */
export class VtsOutOfOperationError extends VtsError {
  override readonly name = 'VtsOutOfOperationError';
  constructor(readonly vts: string) {
    super(VtsErrorCode.outOfOperation, `VTS ${vts} is out of operation`);
  }
}

/** New mounts are refused (a status change is in progress); mounts already active go on. */
export class MountsRefusedError extends VtsError {
  override readonly name = 'MountsRefusedError';
  constructor(readonly vts: string) {
    super(VtsErrorCode.mountsRefused, `VTS ${vts} refuses new mounts`);
  }
}

/** Every virtual drive of the VTS is busy. */
export class MountLimitError extends VtsError {
  override readonly name = 'MountLimitError';
  constructor(readonly limit: number) {
    super(VtsErrorCode.mountLimit, `all ${limit} virtual drives are mounted`);
  }
}

export class VolumeNotFoundError extends VtsError {
  override readonly name = 'VolumeNotFoundError';
  constructor(readonly volser: string) {
    super(VtsErrorCode.volumeNotFound, `volume ${volser} does not exist (mount it as scratch to create it)`);
  }
}

/** The volume is mounted, or being copied, recalled or premigrated in a way that excludes the request. */
export class VolumeInUseError extends VtsError {
  override readonly name = 'VolumeInUseError';
  constructor(readonly volser: string, detail = 'is mounted') {
    super(VtsErrorCode.volumeInUse, `volume ${volser} ${detail}`);
  }
}

/** This VTS's copy is behind (its token is not consistent): the current data lives on the other VTS. */
export class VolumeNotConsistentError extends VtsError {
  override readonly name = 'VolumeNotConsistentError';
  constructor(readonly volser: string, readonly generation: number, readonly dataGeneration: number) {
    super(VtsErrorCode.volumeNotConsistent, `volume ${volser}: this VTS holds generation ${dataGeneration}, the current one is ${generation}`);
  }
}

/** The mount was aborted (immediate or forced status change, or shutdown); what it wrote since mounting is discarded. */
export class MountAbortedError extends VtsError {
  override readonly name = 'MountAbortedError';
  constructor(readonly volser: string, readonly reason: string) {
    super(VtsErrorCode.mountAborted, `mount of ${volser} aborted: ${reason}`);
  }
}

/** The handle is not an active mount of this VTS (already closed, or from another unit). */
export class BadHandleError extends VtsError {
  override readonly name = 'BadHandleError';
  constructor(detail: string) {
    super(VtsErrorCode.badHandle, detail);
  }
}

export class ReadOnlyMountError extends VtsError {
  override readonly name = 'ReadOnlyMountError';
  constructor(readonly volser: string) {
    super(VtsErrorCode.readOnlyMount, `volume ${volser} is mounted read-only`);
  }
}

/** The caller's epoch is older than the newest key this VTS recorded: a stale VTC must not write. */
export class FencedError extends VtsError {
  override readonly name = 'FencedError';
  constructor(readonly epoch: number, readonly lastKeySeq: number, detail?: string) {
    super(VtsErrorCode.fenced, detail === undefined ? `epoch ${epoch} is older than the last key seq ${lastKeySeq} this VTS recorded` : `epoch ${epoch}: ${detail}`);
  }
}

/** A generation that does not move the volume forward (a close, copy or token older than what the VTS holds). */
export class StaleGenerationError extends VtsError {
  override readonly name = 'StaleGenerationError';
  constructor(readonly volser: string, readonly given: number, readonly current: number) {
    super(VtsErrorCode.staleGeneration, `volume ${volser}: generation ${given} is not newer than ${current}`);
  }
}

/** The cache cannot take more data: nothing premigrated is left to evict. */
export class CacheFullError extends VtsError {
  override readonly name = 'CacheFullError';
  constructor(readonly needed: number, readonly capacity: number) {
    super(VtsErrorCode.cacheFull, `tape volume cache full: ${needed} more bytes needed, capacity ${capacity}, nothing premigrated left to evict`);
  }
}

export class BadVolserError extends VtsError {
  override readonly name = 'BadVolserError';
  constructor(readonly volser: string) {
    super(VtsErrorCode.badVolser, `"${volser}" is not a VOLSER (1-6 characters A-Z, 0-9)`);
  }
}

/** Volume data (a peer copy, a cache file, a recalled file) is malformed or does not match its checksum. */
export class BadVolumeDataError extends VtsError {
  override readonly name = 'BadVolumeDataError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(VtsErrorCode.badVolumeData, message, options);
  }
}

/** Premigration of a volume failed on every attempt; the volume stays resident and queued again later. */
export class PremigrationError extends VtsError {
  override readonly name = 'PremigrationError';
  constructor(readonly volser: string, message: string, options?: { cause?: unknown }) {
    super(VtsErrorCode.premigration, `premigration of ${volser}: ${message}`, options);
  }
}

/** A recall failed: the tape copy could not be read back or did not verify. */
export class RecallError extends VtsError {
  override readonly name = 'RecallError';
  constructor(readonly volser: string, message: string, options?: { cause?: unknown }) {
    super(VtsErrorCode.recall, `recall of ${volser}: ${message}`, options);
  }
}

/** No owned cartridge can take a write (all full, failed, protected, or busy). */
export class NoCartridgeError extends VtsError {
  override readonly name = 'NoCartridgeError';
  constructor(message: string) {
    super(VtsErrorCode.noCartridge, message);
  }
}

/** The unit, cache or premigrator was closed. */
export class ClosedError extends VtsError {
  override readonly name = 'ClosedError';
  constructor(what: string) {
    super(VtsErrorCode.closed, `${what} is closed`);
  }
}

/** A state file exists but cannot be read as one. */
export class StateFileError extends VtsError {
  override readonly name = 'StateFileError';
  constructor(readonly path: string, message: string, options?: { cause?: unknown }) {
    super(VtsErrorCode.state, `${path}: ${message}`, options);
  }
}

const VOLSER = /^[A-Z0-9]{1,6}$/;

/** Throws {@link BadVolserError} unless `volser` is 1-6 characters A-Z, 0-9. */
export function checkVolser(volser: string): string {
  if (!VOLSER.test(volser)) throw new BadVolserError(volser);
  return volser;
}
