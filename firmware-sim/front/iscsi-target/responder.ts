/**
 * A command's answer: its Data-In (as few PDUs as the initiator's MaxRecvDataSegmentLength
 * and MaxBurstLength allow, the status in the last one when it is GOOD without sense) or a
 * SCSI Response carrying status, sense and residual.
 */
import { encodeSense } from '../../../src/scsi/sense.js';
import { ScsiStatus } from '../../../src/scsi/status.js';
import { Opcode, RESERVED_TAG } from '../../../src/iscsi/constants.js';
import type { CommandResult, LogicalUnit } from '../../engine/types.js';
import { EMPTY } from './common.js';
import type { TargetConnection } from './connection.js';
import type { Task } from './task.js';

/** Sends the answer to `task` and ends it (its ITT is free from now on). */
export function respond(c: TargetConnection, task: Task, r: CommandResult, unit: LogicalUnit | undefined): void {
  c.tasks.byItt.delete(task.itt);
  const dataInLength = task.dataInLength;
  const data = r.data ? (r.data.length > dataInLength ? r.data.subarray(0, dataInLength) : r.data) : EMPTY;
  const residual = dataInLength - data.length;
  const commandDone = c.ctx.commandDone;
  if (commandDone) commandDone(c.initiatorName, unit, task.cdb, r.status, r.sense, data.length, task.received, (performance.now() - task.startedAt) / 1000);
  const senseBytes = r.sense ? encodeSense(r.sense, unit ? unit.senseFormat(c.nexus) : 'fixed') : EMPTY;
  const collapse = r.status === ScsiStatus.GOOD && senseBytes.length === 0;
  // As few Data-In PDUs as the initiator's MaxRecvDataSegmentLength and MaxBurstLength
  // allow; each carries a slice of the unit's data (no copy), the last one the status.
  const seg = c.params.initiatorMaxRecvDataSegmentLength;
  const burst = c.params.maxBurstLength;
  let dataSN = 0;
  for (let at = 0; at < data.length; ) {
    const burstEnd = Math.min(data.length, (Math.floor(at / burst) + 1) * burst);
    const n = Math.min(seg, burstEnd - at);
    const last = at + n >= data.length;
    const withStatus = last && collapse;
    let statSN = 0;
    if (withStatus) {
      statSN = c.nextStatSN();
    }
    c.send({
      opcode: Opcode.DATA_IN,
      final: at + n >= burstEnd,
      acknowledge: false,
      overflow: false,
      underflow: withStatus && residual > 0,
      statusPresent: withStatus,
      status: withStatus ? r.status : 0,
      lun: task.lun,
      itt: task.itt,
      ttt: RESERVED_TAG,
      statSN,
      expCmdSN: c.window.expCmdSN,
      maxCmdSN: c.window.maxCmdSN(),
      dataSN: dataSN++,
      bufferOffset: at,
      residualCount: withStatus ? residual : 0,
      data: at === 0 && n === data.length ? data : data.subarray(at, at + n),
    });
    at += n;
    if (withStatus) return;
  }
  let senseData: Uint8Array | undefined;
  if (senseBytes.length) {
    senseData = new Uint8Array(2 + senseBytes.length);
    senseData[0] = senseBytes.length >> 8;
    senseData[1] = senseBytes.length & 0xff;
    senseData.set(senseBytes, 2);
  }
  const statSN = c.nextStatSN();
  c.send({
    opcode: Opcode.SCSI_RESPONSE,
    bidiOverflow: false,
    bidiUnderflow: false,
    overflow: false,
    underflow: residual > 0,
    response: 0,
    status: r.status,
    itt: task.itt,
    snackTag: 0,
    statSN,
    expCmdSN: c.window.expCmdSN,
    maxCmdSN: c.window.maxCmdSN(),
    expDataSN: dataSN,
    bidiReadResidualCount: 0,
    residualCount: residual,
    data: senseData,
  });
}
