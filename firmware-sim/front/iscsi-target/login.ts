/**
 * The login phase (RFC 7143 6): the negotiation itself is TargetLogin's; here are the
 * rules of the connection around it (one ISID, TSIH, ITT and CID throughout, no
 * connection added to an existing session) and the switch to the full feature phase.
 */
import { LoginStatus, Opcode } from '../../../src/iscsi/constants.js';
import { SessionType } from '../../../src/iscsi/login.js';
import type { LoginRequestPdu } from '../../../src/iscsi/pdu.js';
import type { TargetConnection } from './connection.js';

/** Refuses the login with `status` (class and detail) and closes the connection. */
export function loginFail(c: TargetConnection, status: number): void {
  c.ctx.stats.loginFailures++;
  c.ctx.options.observer?.loginFailed?.(c.info(), status);
  const f = c.firstLogin;
  c.send({
    opcode: Opcode.LOGIN_RESPONSE, transit: false, continue: false, csg: 0, nsg: 0, versionMax: 0, versionActive: 0,
    isid: f?.isid ?? 0n, tsih: 0, itt: f?.itt ?? 0, ...c.sn(true), statusClass: status >> 8, statusDetail: status & 0xff,
  });
  c.phase = 'gone';
  c.conn.end();
}

/** A Login Request: the next step of the negotiation, and the session once it is complete. */
export function onLogin(c: TargetConnection, req: LoginRequestPdu): void {
  if (!c.firstLogin) {
    c.firstLogin = req;
    c.isid = req.isid;
    c.window.expCmdSN = req.cmdSN;
    if (req.tsih !== 0) return loginFail(c, c.ctx.findSession(req.tsih) ? LoginStatus.TOO_MANY_CONNECTIONS : LoginStatus.SESSION_DOES_NOT_EXIST);
  } else if (req.isid !== c.firstLogin.isid || req.tsih !== c.firstLogin.tsih || req.itt !== c.firstLogin.itt || req.cid !== c.firstLogin.cid) {
    return loginFail(c, LoginStatus.INITIATOR_ERROR);
  }
  const step = c.login.step(req);
  if (step.failed) {
    c.ctx.stats.loginFailures++;
    c.ctx.options.observer?.loginFailed?.({ ...c.info(), initiator: req.data ? initiatorNameOf(req.data) : '' }, (step.response.statusClass << 8) | step.response.statusDetail);
    c.send({
      opcode: Opcode.LOGIN_RESPONSE, ...step.response, versionMax: 0, versionActive: 0, isid: req.isid, tsih: 0, itt: req.itt, ...c.sn(true),
    });
    c.phase = 'gone';
    c.conn.end();
    return;
  }
  let tsih = 0;
  if (step.complete) {
    tsih = c.ctx.allocTsih();
    c.tsih = tsih;
  }
  c.send({ opcode: Opcode.LOGIN_RESPONSE, ...step.response, versionMax: 0, versionActive: 0, isid: req.isid, tsih, itt: req.itt, ...c.sn(true) });
  const done = step.complete;
  if (!done) return;
  c.ctx.stats.logins++;
  c.params = done.params;
  c.initiatorName = done.initiatorName;
  c.discovery = done.sessionType === SessionType.discovery;
  c.nexus = `${c.initiatorName},i,0x${c.isid.toString(16).padStart(12, '0')}`;
  c.phase = 'full';
  if (c.loginTimer) clearTimeout(c.loginTimer);
  c.conn.txDigests = { header: c.params.headerDigest, data: c.params.dataDigest };
  c.conn.rxDigests = c.conn.txDigests;
  c.conn.maxRecv = c.params.targetMaxRecvDataSegmentLength;
  if (!c.discovery) c.ctx.register(c);
  c.ctx.options.observer?.sessionStarted?.(c.info());
  c.startPings();
}

/** InitiatorName from a login request's text, for the log of a refused login. */
function initiatorNameOf(data: Uint8Array): string {
  const m = /(?:^|\0)InitiatorName=([^\0]*)/.exec(Buffer.from(data).toString('utf8'));
  return m?.[1] ?? '';
}
