/**
 * A TCP connection that speaks PDUs: frames what arrives, encodes what leaves, and
 * applies the digests in force. Both the initiator and the emulator's target use it.
 */
import type { Socket } from 'node:net';
import type { BufferPool } from './buffer-pool.js';
import { decodePdu, encodePduParts, PduFormatError, PduFramer, type Digests, type FrameEvent, type Pdu } from './pdu.js';

export interface PduSocketHandlers {
  /**
   * A decoded PDU. With a {@link PduSocketOptions.pool}, its memory goes back to the pool
   * when this returns, unless it returns true: the handler keeps the PDU (and gives its
   * memory back through the pool itself once done with it).
   */
  pdu(pdu: Pdu): boolean | void;
  /** A PDU that framed but did not decode (unknown opcode, forbidden field). */
  malformed(err: PduFormatError): void;
  /** Framing trouble; `header-digest` is always followed by the connection closing. */
  framing(e: Exclude<FrameEvent, { kind: 'frame' }>): void;
  /** The connection is gone, for whatever reason; called once. */
  closed(err?: Error): void;
}

export interface PduSocketOptions {
  /**
   * Gather every PDU sent during one task of the event loop (the callback that sent it and
   * the microtasks it set off) and write them together once that is over: one system call
   * for a burst of responses, small PDUs joined into one buffer, large data segments
   * handed over as they are. Off: each PDU is written when sent (a tool may then mix
   * `send` with raw writes on the socket).
   */
  readonly coalesce?: boolean;
  /**
   * Gather PDUs that span several socket reads (large data segments) into buffers of this
   * pool rather than fresh ones. See {@link PduSocketHandlers.pdu} for who gives them back.
   */
  readonly pool?: BufferPool;
}

/** Settled once: `.then` on it queues a microtask (cheaper than queueMicrotask). */
const RESOLVED = Promise.resolve();

/** Pieces shorter than this are joined into one buffer before a gathered write. */
const JOIN_BELOW = 2048;

export class PduSocket {
  /** Digests applied to what we send. */
  txDigests: Digests = { header: false, data: false };
  /** Digests the peer applies to what it sends. */
  rxDigests: Digests = { header: false, data: false };
  /** Largest data segment we accept (our MaxRecvDataSegmentLength). */
  maxRecv = 8192;
  private readonly framer: PduFramer;
  private readonly pool: BufferPool | undefined;
  private ended = false;
  pdusIn = 0;

  private readonly coalesce: boolean;
  /** Encoded pieces waiting for the end of the current task (coalesce mode). */
  private out: Uint8Array[] = [];
  private outBytes = 0;
  private flushQueued = false;

  constructor(
    readonly socket: Socket,
    private readonly handlers: PduSocketHandlers,
    options: PduSocketOptions = {},
  ) {
    this.coalesce = options.coalesce ?? false;
    const pool = (this.pool = options.pool);
    socket.setNoDelay(true);
    this.framer = new PduFramer({ digests: () => this.rxDigests, maxDataSegmentLength: () => this.maxRecv, ...(pool ? { alloc: (n: number) => pool.take(n) } : {}) });
    socket.on('data', (chunk: Buffer) => {
      if (this.ended) return;
      const ok = this.framer.push(chunk, this.frameHandler);
      if (!ok) this.destroy();
    });
    socket.on('error', (err) => this.finish(err));
    socket.on('close', () => this.finish());
  }

  private readonly frameHandler = (e: FrameEvent): boolean => this.onFrame(e);

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
      this.pool?.give(e.frame.bhs);
      return !this.ended;
    }
    if (this.handlers.pdu(pdu) !== true) this.pool?.give(e.frame.bhs);
    return !this.ended;
  }

  /** Bytes sent but not yet taken by the kernel (queued here or in the socket). */
  get queuedBytes(): number {
    return this.outBytes + this.socket.writableLength;
  }

  send(pdu: Pdu): boolean {
    if (this.ended || this.socket.destroyed) return false;
    if (this.coalesce) {
      const parts = encodePduParts(pdu, this.txDigests);
      for (const part of parts) {
        this.out.push(part);
        this.outBytes += part.length;
      }
      if (!this.flushQueued) {
        this.flushQueued = true;
        // A microtask queued now runs after those already queued; the tick it queues runs
        // once the microtask queue is empty, i.e. after every command completion this
        // task set off.
        void RESOLVED.then(this.afterMicrotasks);
      }
      return !this.socket.writableNeedDrain;
    }
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

  private readonly afterMicrotasks = (): void => {
    process.nextTick(this.flushNow);
  };
  private readonly flushNow = (): void => this.flush();

  /** Writes what coalesce mode holds: one write, or one gathered write (writev). */
  flush(): void {
    this.flushQueued = false;
    const out = this.out;
    if (out.length === 0) return;
    this.out = [];
    this.outBytes = 0;
    const socket = this.socket;
    if (socket.destroyed || socket.writableEnded) return;
    if (out.length === 1) {
      socket.write(out[0]!);
      return;
    }
    // Runs of small pieces (headers, short PDUs) are joined; data segments go as they are.
    const pieces: Uint8Array[] = [];
    let runStart = 0;
    let runBytes = 0;
    for (let i = 0; i <= out.length; i++) {
      const part = out[i];
      if (part && part.length < JOIN_BELOW) {
        runBytes += part.length;
        continue;
      }
      if (i - runStart === 1) pieces.push(out[runStart]!);
      else if (i - runStart > 1) pieces.push(Buffer.concat(out.slice(runStart, i), runBytes));
      if (part) pieces.push(part);
      runStart = i + 1;
      runBytes = 0;
    }
    if (pieces.length === 1) {
      socket.write(pieces[0]!);
      return;
    }
    socket.cork();
    for (const piece of pieces) socket.write(piece);
    socket.uncork();
  }

  /** Sends what is queued, then closes. */
  end(): void {
    this.flush();
    if (!this.socket.destroyed) this.socket.end();
    setTimeout(() => this.destroy(), 1000).unref();
  }

  destroy(err?: Error): void {
    this.out = [];
    this.outBytes = 0;
    if (!this.socket.destroyed) this.socket.destroy();
    this.finish(err);
  }

  private finish(err?: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.handlers.closed(err);
  }
}
