/**
 * What a user of the iSCSI target sees: its options, its observer, its counters and the
 * handle of a running target.
 */
import type { SenseData } from '../../../src/scsi/sense.js';
import type { ChapCredentials } from '../../../src/iscsi/chap.js';
import type { DigestName } from '../../../src/iscsi/negotiate.js';
import type { EmulatedTarget, LogicalUnit } from '../../engine/types.js';

export interface IscsiTargetChap {
  /** Initiator CHAP names and their secrets. */
  readonly users: Readonly<Record<string, string>> | ((name: string) => string | undefined);
  /** Credentials the target answers mutual CHAP with. */
  readonly mutual?: ChapCredentials;
}

export interface IscsiTargetOptions {
  readonly target: EmulatedTarget;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 0 (an ephemeral port; read it from the handle). */
  readonly port?: number;
  /** Default `iqn.2026-11.io.ptpvts:<target.name>`. */
  readonly iqn?: string;
  /** Require CHAP from every initiator. */
  readonly chap?: IscsiTargetChap;
  /** Digests accepted, in order of preference. Default both CRC32C and None. */
  readonly headerDigests?: readonly DigestName[];
  readonly dataDigests?: readonly DigestName[];
  /** The target's MaxRecvDataSegmentLength. Default 256 KiB. */
  readonly maxRecvDataSegmentLength?: number;
  /** Largest MaxBurstLength accepted (the smaller of both sides' wins). Default 1 MiB. */
  readonly maxBurstLength?: number;
  /** Largest FirstBurstLength accepted (the smaller of both sides' wins). Default 256 KiB. */
  readonly firstBurstLength?: number;
  readonly immediateData?: boolean;
  readonly initialR2T?: boolean;
  /** Commands each session may have outstanding (the CmdSN window). Default 32. */
  readonly cmdWindow?: number;
  /** Ping connections idle this long with NOP-In; 0 disables. Default 30 s. */
  readonly nopInIntervalMs?: number;
  /** An unanswered ping drops the connection after this long. Default 10 s. */
  readonly nopInTimeoutMs?: number;
  /** A login not done within this drops the connection. Default 15 s. */
  readonly loginTimeoutMs?: number;
  /** Answer SendTargets discovery sessions. Default true. */
  readonly allowDiscovery?: boolean;
  readonly portalGroupTag?: number;
  /** Largest write (expected data transfer length) a command may ask for. Default 64 MiB. */
  readonly maxTransferLength?: number;
  /** Told of sessions and, when it has `commandDone`, of every command (logs, metrics). */
  readonly observer?: IscsiTargetObserver;
}

/** A session of the target, as its observer is told of it. */
export interface IscsiSessionInfo {
  /** Initiator name (`iqn....`); empty when a login failed before naming it. */
  readonly initiator: string;
  /** The initiator's ISID, 12 hex digits. */
  readonly isid: string;
  readonly tsih: number;
  /** `address:port` of the initiator's end of the connection. */
  readonly peer: string;
  readonly discovery: boolean;
}

/**
 * What a target tells about its work. Every callback runs synchronously on the target's
 * event loop turn and must not throw (an exception is the observer's bug and is not caught).
 * `commandDone` is on the command path: it gets plain arguments (no object is made per
 * command) and costs nothing when absent.
 */
export interface IscsiTargetObserver {
  /** A session logged in (normal or discovery). */
  sessionStarted?(s: IscsiSessionInfo): void;
  /** A session that had logged in ended: `reason` is `logout`, `connection closed`, `session reinstated`, `target stopping`, ... */
  sessionEnded?(s: IscsiSessionInfo, reason: string): void;
  /** A login was refused (`status` is the iSCSI login status class and detail, e.g. 0x0201). */
  loginFailed?(s: IscsiSessionInfo, status: number): void;
  /**
   * A SCSI command was answered. `bytesIn` is the Data-In sent, `bytesOut` the Data-Out
   * received; `seconds` from its arrival to its answer. `sense` is set for CHECK CONDITION.
   * Commands aborted (TMF, connection loss) are not answered and not reported.
   */
  commandDone?(initiator: string, unit: LogicalUnit | undefined, cdb: Uint8Array, status: number, sense: SenseData | undefined, bytesIn: number, bytesOut: number, seconds: number): void;
}

/** Counters for tests and logs. */
export interface IscsiTargetStats {
  connections: number;
  logins: number;
  loginFailures: number;
  commands: number;
  rejects: number;
  dropped: number;
  pdusIn: number;
}

/**
 * A running target. `stop()` closes the listener and every connection; commands in
 * flight are aborted in their units (they see their signal abort) and get no response.
 */
export interface IscsiTargetHandle {
  readonly host: string;
  readonly port: number;
  readonly iqn: string;
  readonly stats: IscsiTargetStats;
  /** Number of open connections. */
  connectionCount(): number;
  /** Receive buffers of large PDUs and Data-Out: how many were made, and how many takes reused one. */
  bufferStats(): { made: number; reused: number };
  stop(): Promise<void>;
}
