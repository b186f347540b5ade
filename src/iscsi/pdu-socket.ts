/**
 * A TCP connection that speaks PDUs: frames what arrives, encodes what leaves, and
 * applies the digests in force. Both the initiator and the emulator's target use it.
 */
import type { Socket } from 'node:net';
import { decodePdu, encodePduParts, PduFormatError, PduFramer, type Digests, type FrameEvent, type Pdu } from './pdu.js';

export interface PduSocketHandlers {
  /** A decoded PDU. */
  pdu(pdu: Pdu): void;
  /** A PDU that framed but did not decode (unknown opcode, forbidden field). */
  malformed(err: PduFormatError): void;
  /** Framing trouble; `header-digest` is always followed by the connection closing. */
  framing(e: Exclude<FrameEvent, { kind: 'frame' }>): void;
  /** The connection is gone, for whatever reason; called once. */
  closed(err?: Error): void;
}

export class PduSocket {
  /** Digests applied to what we send. */
  txDigests: Digests = { header: false, data: false };
  /** Digests the peer applies to what it sends. */
  rxDigests: Digests = { header: false, data: false };
  /** Largest data segment we accept (our MaxRecvDataSegmentLength). */
  maxRecv = 8192;
  private readonly framer: PduFramer;
  private ended = false;
  pdusIn = 0;

  constructor(
    readonly socket: Socket,
    private readonly handlers: PduSocketHandlers,
  ) {
    socket.setNoDelay(true);
    this.framer = new PduFramer({ digests: () => this.rxDigests, maxDataSegmentLength: () => this.maxRecv });
    socket.on('data', (chunk: Buffer) => {
      if (this.ended) return;
      const ok = this.framer.push(chunk, (e) => this.onFrame(e));
      if (!ok) this.destroy();
    });
    socket.on('error', (err) => this.finish(err));
    socket.on('close', () => this.finish());
  }

  get closed(): boolean {
    return this.ended;
  }

  private onFrame(e: FrameEvent): boolean {
    if (this.ended) return false;
    this.pdusIn++;
    if (e.kind !== 'frame') {
      this.handlers.framing(e);
      return !this.ended;
    }
    let pdu: Pdu;
    try {
      pdu = decodePdu(e.frame);
    } catch (err) {
      if (!(err instanceof PduFormatError)) throw err;
      this.handlers.malformed(err);
      return !this.ended;
    }
    this.handlers.pdu(pdu);
    return !this.ended;
  }

  send(pdu: Pdu): boolean {
    if (this.ended || this.socket.destroyed) return false;
    // The first PDU of a turn of the event loop goes out at once (no added latency for a
    // lone response); any more in the same turn are corked and leave in one gathered
    // write. A large data segment is written as it is, not copied into a frame.
    if (this.sentThisTurn && !this.corked) {
      this.corked = true;
      this.socket.cork();
    }
    if (!this.sentThisTurn) {
      this.sentThisTurn = true;
      setImmediate(() => {
        this.sentThisTurn = false;
        if (this.corked) {
          this.corked = false;
          if (!this.socket.destroyed) this.socket.uncork();
        }
      });
    }
    let ok = true;
    for (const part of encodePduParts(pdu, this.txDigests)) ok = this.socket.write(part) && ok;
    return ok;
  }
  private sentThisTurn = false;
  private corked = false;

  /** Sends what is queued, then closes. */
  end(): void {
    if (!this.socket.destroyed) this.socket.end();
    setTimeout(() => this.destroy(), 1000).unref();
  }

  destroy(err?: Error): void {
    if (!this.socket.destroyed) this.socket.destroy();
    this.finish(err);
  }

  private finish(err?: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.handlers.closed(err);
  }
}
