/** A bare logged-in connection for tests that send hand-made or hostile PDUs. */
import { connect } from 'node:net';
import { InitiatorLogin, SessionType } from '../../../src/iscsi/login.js';
import { localParams } from '../../../src/iscsi/negotiate.js';
import { PduSocket } from '../../../src/iscsi/pdu-socket.js';
import { encodePdu, type Pdu } from '../../../src/iscsi/pdu.js';
import type { ChapCredentials } from '../../../src/iscsi/chap.js';
import { LoginError } from '../../../src/iscsi/errors.js';

export interface RawConnection {
  readonly received: Pdu[];
  cmdSN: number;
  readonly closed: Promise<void>;
  isClosed(): boolean;
  sendPdu(p: Pdu): void;
  sendRaw(b: Uint8Array): void;
  /** Waits for a PDU matching `pred` among those received from now on (or already). */
  waitFor(pred: (p: Pdu) => boolean, ms?: number): Promise<Pdu>;
  close(): void;
}

export async function rawLogin(o: { host: string; port: number; iqn: string; initiatorName?: string; isid?: bigint; chap?: ChapCredentials; digests?: boolean; keep?: boolean }): Promise<RawConnection> {
  const socket = connect({ host: o.host, port: o.port });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const machine = new InitiatorLogin({
    initiatorName: o.initiatorName ?? 'iqn.2026-11.io.ptpvts:raw',
    targetName: o.iqn,
    sessionType: SessionType.normal,
    ...(o.chap ? { chap: o.chap } : {}),
    local: localParams({ headerDigests: o.digests ? ['CRC32C'] : ['None'], dataDigests: o.digests ? ['CRC32C'] : ['None'], maxRecvDataSegmentLength: 65536 }),
    isid: o.isid ?? 0x800000000000n + BigInt(Math.floor(Math.random() * 0xffffff)),
    tsih: 0,
    cid: 0,
    itt: 0xabc,
    cmdSN: 1,
  });
  const received: Pdu[] = [];
  const listeners = new Set<(p: Pdu) => void>();
  let loggedIn: (v: number) => void = () => undefined;
  let failed: (e: Error) => void = () => undefined;
  const login = new Promise<number>((res, rej) => {
    loggedIn = res;
    failed = rej;
  });
  let inLogin = true;
  let closedFlag = false;
  let onClose: () => void = () => undefined;
  const closed = new Promise<void>((r) => (onClose = r));
  const conn: PduSocket = new PduSocket(socket, {
    pdu: (p) => {
      if (inLogin) {
        try {
          const n = machine.next(p as never);
          if ('request' in n) conn.send(n.request);
          else {
            inLogin = false;
            conn.txDigests = { header: n.done.params.headerDigest, data: n.done.params.dataDigest };
            conn.rxDigests = conn.txDigests;
            conn.maxRecv = 65536;
            loggedIn(n.done.expCmdSN);
          }
        } catch (e) {
          failed(e as Error);
        }
        return;
      }
      if (o.keep !== false) received.push(p);
      for (const l of listeners) l(p);
    },
    malformed: () => undefined,
    framing: () => undefined,
    closed: () => {
      closedFlag = true;
      if (inLogin) failed(new LoginError(0x0200, 'closed during login'));
      onClose();
    },
  });
  conn.send(machine.first());
  const cmdSN = await login;
  const rc: RawConnection = {
    received,
    cmdSN,
    closed,
    isClosed: () => closedFlag,
    sendPdu: (p) => void conn.send(p),
    sendRaw: (b) => void (!socket.destroyed && socket.write(b)),
    waitFor: (pred, ms = 3000) =>
      new Promise<Pdu>((resolve, reject) => {
        const hit = received.find(pred);
        if (hit) return resolve(hit);
        const t = setTimeout(() => {
          listeners.delete(l);
          reject(new Error('timed out waiting for a PDU'));
        }, ms);
        const l = (p: Pdu): void => {
          if (!pred(p)) return;
          clearTimeout(t);
          listeners.delete(l);
          resolve(p);
        };
        listeners.add(l);
      }),
    close: () => conn.destroy(),
  };
  return rc;
}

export { encodePdu };
