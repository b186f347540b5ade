/**
 * The target's observer (logs, metrics): sessions in and out with the reason, refused
 * logins, and every answered command with its initiator, status, sense and byte counts.
 * Also that a session which logged out is no longer counted as a connection.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { IscsiSession } from '../../../src/iscsi/session.js';
import { ScsiStatus } from '../../../src/scsi/status.js';
import { describeSense, type SenseData } from '../../../src/scsi/sense.js';
import { startIscsiTarget, type IscsiSessionInfo, type IscsiTargetHandle } from './index.js';
import { getCdb, putCdb, ToyTarget } from './fixture.js';

describe('iSCSI target observer', () => {
  let target: IscsiTargetHandle | undefined;
  afterEach(async () => {
    await target?.stop();
    target = undefined;
  });

  it('reports logins, logouts, refused logins and commands, and forgets a connection that logged out', async () => {
    const events: string[] = [];
    const commands: { initiator: string; op: number; status: number; sense?: string; bytesIn: number; bytesOut: number; seconds: number }[] = [];
    target = await startIscsiTarget({
      target: new ToyTarget('obs'),
      observer: {
        sessionStarted: (s: IscsiSessionInfo) => events.push(`in ${s.initiator} ${s.discovery}`),
        sessionEnded: (s, reason) => events.push(`out ${s.initiator} ${reason}`),
        loginFailed: (s, status) => events.push(`refused ${s.initiator} 0x${status.toString(16)}`),
        commandDone: (initiator, _unit, cdb, status, sense: SenseData | undefined, bytesIn, bytesOut, seconds) =>
          commands.push({ initiator, op: cdb[0]!, status, ...(sense ? { sense: describeSense(sense) } : {}), bytesIn, bytesOut, seconds }),
      },
    });
    const base = { host: '127.0.0.1', port: target.port, initiatorName: 'iqn.2026-11.io.ptpvts:obs-test' };
    await expect(IscsiSession.open({ ...base, targetName: 'iqn.2026-11.io.ptpvts:nobody' })).rejects.toThrow();
    const s = await IscsiSession.open({ ...base, targetName: target.iqn });
    // The first gets the power-on unit attention (its Data-Out was received all the same).
    await s.execute({ lun: 0, cdb: putCdb(1000), direction: 'out', dataOut: new Uint8Array(1000) });
    await s.execute({ lun: 0, cdb: putCdb(1000), direction: 'out', dataOut: new Uint8Array(1000) });
    await s.execute({ lun: 0, cdb: getCdb(300), direction: 'in', dataInLength: 300 });
    await s.execute({ lun: 9, cdb: getCdb(8), direction: 'in', dataInLength: 8 });
    expect(target.connectionCount()).toBe(1);
    await s.close();
    await expect.poll(() => target!.connectionCount()).toBe(0);
    expect(events).toEqual(['refused iqn.2026-11.io.ptpvts:obs-test 0x203', 'in iqn.2026-11.io.ptpvts:obs-test false', 'out iqn.2026-11.io.ptpvts:obs-test logout']);
    expect(commands.map(({ seconds, ...c }) => (expect(seconds).toBeGreaterThanOrEqual(0), c))).toEqual([
      { initiator: 'iqn.2026-11.io.ptpvts:obs-test', op: 0xc4, status: ScsiStatus.CHECK_CONDITION, sense: 'UNIT ATTENTION / POWER ON, RESET, OR BUS DEVICE RESET OCCURRED', bytesIn: 0, bytesOut: 1000 },
      { initiator: 'iqn.2026-11.io.ptpvts:obs-test', op: 0xc4, status: ScsiStatus.GOOD, bytesIn: 0, bytesOut: 1000 },
      { initiator: 'iqn.2026-11.io.ptpvts:obs-test', op: 0xc3, status: ScsiStatus.GOOD, bytesIn: 300, bytesOut: 0 },
      { initiator: 'iqn.2026-11.io.ptpvts:obs-test', op: 0xc3, status: ScsiStatus.CHECK_CONDITION, sense: 'ILLEGAL REQUEST / LOGICAL UNIT NOT SUPPORTED', bytesIn: 0, bytesOut: 0 },
    ]);
  });
});
