/**
 * A VTS process's network face: its {@link VtsUnit} served over the authenticated RPC of
 * rpc.ts, so VTCs reach it over TCP. Only configured VTCs may call it (the operator may
 * read its view). Mount handles and copy streams live as long as the server.
 */
import type { Logger } from 'pino';
import type { VtsUnit, MountHandle, VolumeExport } from '../vts/index.js';
import { BadRequestError, NotAllowedError } from './errors.js';
import { MAX_BODY, OPERATOR, RpcServer, vtsParticipant } from './rpc.js';
import type { RpcReply, RpcSecurity } from './rpc.js';

const str = (p: Record<string, unknown>, k: string): string => {
  const v = p[k];
  if (typeof v !== 'string') throw new BadRequestError(`parameter ${k} must be a string`);
  return v;
};
const num = (p: Record<string, unknown>, k: string): number => {
  const v = p[k];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new BadRequestError(`parameter ${k} must be a number`);
  return v;
};
const optNum = (p: Record<string, unknown>, k: string): number | undefined => (p[k] === undefined || p[k] === null ? undefined : num(p, k));
const optStr = (p: Record<string, unknown>, k: string): string | undefined => (p[k] === undefined || p[k] === null ? undefined : str(p, k));
/** The caller's epoch (`epoch`, `epochMac`), when it sent one: the unit refuses what a newer key fenced. */
const fenceOf = (p: Record<string, unknown>): { epoch?: number; epochMac?: string; bootId?: string; minSeq?: number } => {
  const epoch = optNum(p, 'epoch');
  const epochMac = optStr(p, 'epochMac');
  const bootId = optStr(p, 'bootId');
  const minSeq = optNum(p, 'minSeq');
  return { ...(epoch === undefined ? {} : { epoch }), ...(epochMac === undefined ? {} : { epochMac }), ...(bootId === undefined ? {} : { bootId }), ...(minSeq === undefined ? {} : { minSeq }) };
};

/** A queue feeding `applyCopy` as chunks arrive over the network. */
class ChunkQueue implements AsyncIterable<Uint8Array> {
  readonly #items: Uint8Array[] = [];
  #ended = false;
  #error: Error | null = null;
  #wake: (() => void) | null = null;
  push(c: Uint8Array): void {
    this.#items.push(c);
    this.#wake?.();
  }
  end(): void {
    this.#ended = true;
    this.#wake?.();
  }
  /** Ends the stream with an error: the copy is discarded, never committed short. */
  abort(e: Error): void {
    this.#error = e;
    this.#wake?.();
  }
  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    while (true) {
      if (this.#error !== null) throw this.#error;
      const c = this.#items.shift();
      if (c !== undefined) {
        yield c;
        continue;
      }
      if (this.#ended) return;
      await new Promise<void>((r) => (this.#wake = r));
      this.#wake = null;
    }
  }
}

const COPY_IDLE_MS = 30_000;

export interface VtsServerOptions {
  readonly unit: VtsUnit;
  /** `A` or `B`. */
  readonly name: string;
  readonly security: RpcSecurity;
  readonly logger: Logger;
}

/**
 * Serves one VTS unit. Errors of the unit go back to the caller with their code
 * (EVTSOUT, EFENCED...). No timeouts of its own; `close` drops every connection and
 * aborts nothing on the unit (the caller shuts the unit down).
 */
export class VtsServer {
  readonly rpc: RpcServer;
  readonly #unit: VtsUnit;
  readonly #log: Logger;
  readonly #mounts = new Map<number, MountHandle>();
  readonly #exports = new Map<number, { x: VolumeExport; it: AsyncIterator<Uint8Array> }>();
  readonly #copies = new Map<number, { q: ChunkQueue; done: Promise<unknown>; idle: NodeJS.Timeout }>();
  #nextId = 1;

  constructor(o: VtsServerOptions) {
    this.#unit = o.unit;
    this.#log = o.logger;
    this.rpc = new RpcServer(vtsParticipant(o.name), o.security, (from, m, p, b) => this.#handle(from, m, p, b));
  }

  listen(host: string, port: number): Promise<number> {
    return this.rpc.listen(host, port);
  }

  async close(): Promise<void> {
    await this.rpc.close();
    for (const { x } of this.#exports.values()) await x.release();
    this.#exports.clear();
    for (const c of this.#copies.values()) {
      clearTimeout(c.idle);
      c.q.abort(new BadRequestError('VTS server closed during the copy'));
    }
    this.#copies.clear();
  }

  /** A copy whose sender went quiet (crashed VTC, cut link) is dropped so the volume is not held busy. */
  #idle(id: number, q: ChunkQueue): NodeJS.Timeout {
    return setTimeout(() => {
      this.#copies.delete(id);
      q.abort(new BadRequestError(`copy ${id} abandoned: no data for ${COPY_IDLE_MS} ms`));
    }, COPY_IDLE_MS);
  }

  #h(p: Record<string, unknown>): MountHandle {
    const h = this.#mounts.get(num(p, 'h'));
    if (h === undefined) throw new BadRequestError(`unknown mount handle ${String(p.h)}`);
    return h;
  }

  #view(): Record<string, unknown> {
    return { ...this.#unit.view(), mounts: this.#unit.activeMounts().length, transfers: this.#exports.size + this.#copies.size, refusing: this.#unit.refusingMounts };
  }

  async #handle(from: string, m: string, p: Record<string, unknown>, body: Uint8Array): Promise<RpcReply> {
    const u = this.#unit;
    if (from === OPERATOR && m !== 'view' && m !== 'volumes') throw new NotAllowedError(from, m);
    if (from.startsWith('vts-')) throw new NotAllowedError(from, m);
    switch (m) {
      case 'view':
        return { result: this.#view() };
      case 'volumes':
        return { result: u.volumes() };
      case 'fence':
        u.checkFence(fenceOf(p));
        return { result: this.#view() };
      case 'tokens':
        // A reader with an epoch learns the tokens only if no newer key fenced it here.
        if (p.epoch !== undefined) u.checkFence(fenceOf(p));
        return { result: u.volumes().map((v) => ({ volser: v.volser, generation: v.token.generation, consistent: v.token.consistent, dataGeneration: v.dataGeneration })) };
      case 'record':
        if (u.inOperation) await u.recordKey(num(p, 'seq'), optStr(p, 'mac') ?? '');
        return { result: this.#view() };
      case 'set-in':
        await u.setInOperation(p.seq === undefined ? {} : { seq: num(p, 'seq'), ...(optStr(p, 'mac') === undefined ? {} : { mac: str(p, 'mac') }) });
        u.refuseNewMounts(false);
        this.#log.info({ from, seq: p.seq }, 'put in operation');
        return { result: this.#view() };
      case 'set-out':
        await u.setOutOfOperation({ seq: num(p, 'seq'), ...(optStr(p, 'mac') === undefined ? {} : { mac: str(p, 'mac') }), reason: typeof p.reason === 'string' ? p.reason : `taken out by ${from}` });
        this.#log.info({ from, seq: p.seq }, 'taken out of operation');
        return { result: this.#view() };
      case 'refuse':
        u.refuseNewMounts(p.refuse === true);
        return { result: this.#view() };
      case 'abort':
        return { result: { aborted: await u.abortMounts(typeof p.reason === 'string' ? p.reason : `aborted by ${from}`) } };
      case 'mark-behind':
        return { result: await u.markBehind(str(p, 'volser'), num(p, 'generation'), fenceOf(p)) };
      case 'mount': {
        const h = await u.mount(str(p, 'volser'), { scratch: p.scratch === true, writable: p.writable !== false, ...fenceOf(p) });
        this.#mounts.set(h.id, h);
        return { result: { h: h.id } };
      }
      case 'write':
        await u.write(this.#h(p), body);
        return {};
      case 'filemark':
        await u.writeFilemark(this.#h(p));
        return {};
      case 'read': {
        const r = await u.read(this.#h(p), Math.min(MAX_BODY, num(p, 'max')));
        if (r.kind === 'block') return { result: { kind: 'block', length: r.length, truncated: r.truncated }, body: r.data };
        return { result: { kind: r.kind } };
      }
      case 'rewind':
        await u.rewind(this.#h(p));
        return {};
      case 'close': {
        const h = this.#h(p);
        const generation = optNum(p, 'generation');
        try {
          return { result: await u.close(h, { ...(generation === undefined ? {} : { generation }), ...fenceOf(p) }) };
        } finally {
          // A refused close may leave the mount active (a stale generation: close again) or end it (fenced).
          if (!u.activeMounts().some((x) => x.id === h.id)) this.#mounts.delete(h.id);
        }
      }
      case 'abandon': {
        const h = this.#mounts.get(num(p, 'h'));
        if (h !== undefined) {
          await u.abandon(h);
          this.#mounts.delete(h.id);
        }
        return { result: this.#view() };
      }
      case 'export-open': {
        const x = await u.exportVolume(str(p, 'volser'));
        const id = this.#nextId++;
        this.#exports.set(id, { x, it: x.chunks[Symbol.asyncIterator]() });
        return { result: { xid: id, token: x.token, bytes: x.bytes, sha256: x.sha256 } };
      }
      case 'export-read': {
        const id = num(p, 'xid');
        const e = this.#exports.get(id);
        if (e === undefined) throw new BadRequestError(`unknown export ${id}`);
        const n = await e.it.next();
        if (n.done === true) {
          this.#exports.delete(id);
          return { result: { done: true } };
        }
        return { result: { done: false }, body: n.value };
      }
      case 'export-release': {
        const id = num(p, 'xid');
        const e = this.#exports.get(id);
        this.#exports.delete(id);
        if (e !== undefined) await e.x.release();
        return {};
      }
      case 'copy-open': {
        const q = new ChunkQueue();
        const id = this.#nextId++;
        const tok = p.token as { generation?: unknown; consistent?: unknown } | undefined;
        if (typeof tok?.generation !== 'number') throw new BadRequestError('copy-open needs a token');
        const done = u.applyCopy(str(p, 'volser'), q, { generation: tok.generation, consistent: true }, { ...(typeof p.sha256 === 'string' ? { sha256: p.sha256 } : {}), ...fenceOf(p) });
        done.catch(() => undefined);
        this.#copies.set(id, { q, done, idle: this.#idle(id, q) });
        return { result: { cid: id } };
      }
      case 'copy-write': {
        const c = this.#copies.get(num(p, 'cid'));
        if (c === undefined) throw new BadRequestError(`unknown copy ${String(p.cid)}`);
        clearTimeout(c.idle);
        c.idle = this.#idle(num(p, 'cid'), c.q);
        c.q.push(body.slice());
        return {};
      }
      case 'copy-close': {
        const id = num(p, 'cid');
        const c = this.#copies.get(id);
        if (c === undefined) throw new BadRequestError(`unknown copy ${id}`);
        this.#copies.delete(id);
        clearTimeout(c.idle);
        c.q.end();
        return { result: await c.done };
      }
      default:
        throw new BadRequestError(`unknown VTS method ${m}`);
    }
  }
}
