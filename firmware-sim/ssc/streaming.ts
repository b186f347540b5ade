/**
 * The drive's streaming model: a data buffer between the host and the tape, speed matching
 * and backhitch (docs/emulator.md, "Streaming, speed matching and backhitch").
 *
 * Host WRITEs land in the buffer and the tape drains it at one of the drive's published
 * speed steps: the lowest step at or above the host's net rate (bytes as stored, after
 * compression, over a sliding window), the highest when the host is faster. A WRITE waits
 * only for room (a full buffer back-pressures the host to the tape's speed). When the host
 * is slower than the lowest step the buffer runs dry and the tape stops; it starts again
 * once the buffer holds `startBytes`, after a backhitch (stop, reverse, reposition), which
 * is how a slow host makes a drive shoe-shine. Reads mirror it: the tape reads ahead into
 * the buffer until it is full, and a READ waits only for bytes not yet read ahead.
 *
 * All times are device seconds from the injected clock; the model never waits itself, it
 * says how long a command waits. It is pure state and arithmetic, so tests drive it with a
 * clock they advance by hand. The drive uses it only when its time scale is above 0.
 */

export interface StreamingParameters {
  /** The drive's speed steps in bytes per second (any order). */
  readonly stepsBytesPerSecond: readonly number[];
  /** Size of the data buffer in bytes. */
  readonly bufferBytes: number;
  /** Device seconds a stopped tape takes to reposition before it streams again. */
  readonly backhitchSeconds: number;
  /**
   * Fill (writing) or free room (reading) at which a stopped tape starts again, bytes.
   * Half the buffer by default: enough that a host near the tape's speed keeps it moving.
   */
  readonly startBytes?: number;
  /** Device seconds over which the host's rate is estimated (5 by default). */
  readonly windowSeconds?: number;
}

/** What the tape is doing. */
export type TapeMotion = 'stopped' | 'repositioning' | 'streaming';

/** What a benchmarking user sees of the model (drive status, `sim ctl status --json`). */
export interface StreamingStats {
  /** The selected speed step, MB/s (10^6 bytes). */
  readonly speedMBps: number;
  readonly motion: TapeMotion;
  readonly direction: 'idle' | 'write' | 'read';
  /** Backhitches since the drive powered on. */
  readonly backhitches: number;
  /** Bytes in the buffer (written and not yet on tape, or read ahead and not yet taken). */
  readonly bufferFillBytes: number;
  readonly bufferBytes: number;
  /** Device seconds the tape moved data. */
  readonly streamingSeconds: number;
  /** Device seconds it stood still or repositioned while a transfer was under way. */
  readonly stoppedSeconds: number;
  /** The host's estimated net rate in MB/s, when the window has enough to tell. */
  readonly hostMBps?: number;
}

interface Sample {
  readonly t: number;
  readonly bytes: number;
  /** Device seconds the transfer waited on the tape (a full buffer, data not read ahead). */
  blocked: number;
}

export class StreamingModel {
  private readonly steps: readonly number[];
  private readonly capacity: number;
  private readonly backhitchSeconds: number;
  private readonly startBytes: number;
  private readonly window: number;
  /** Device time the state below holds for. */
  private t: number;
  private direction: 'idle' | 'write' | 'read' = 'idle';
  /**
   * Bytes in the buffer. It may leave [0, capacity] by what the command being answered
   * still waits for (a WRITE past a full buffer, a READ of bytes not yet read ahead); the
   * tape brings it back by the time that wait ends.
   */
  private fill = 0;
  private motion: TapeMotion = 'stopped';
  private readyAt = 0;
  /** The tape stands where the next transfer starts (after a load or a locate): no backhitch. */
  private placed = true;
  private speed: number;
  private backhitches = 0;
  private streamingSeconds = 0;
  private stoppedSeconds = 0;
  /** Host transfers in the window, oldest first from `head`, with running sums (a WRITE costs O(1)). */
  private samples: Sample[] = [];
  private head = 0;
  private windowBytes = 0;
  private windowBlocked = 0;
  private hostRate: number | undefined;

  constructor(
    p: StreamingParameters,
    private readonly clock: () => number,
  ) {
    if (p.stepsBytesPerSecond.length === 0 || p.stepsBytesPerSecond.some((s) => !(s > 0))) throw new RangeError('streaming model: the speed steps must be positive and at least one');
    if (!(p.bufferBytes > 0)) throw new RangeError(`streaming model: buffer of ${p.bufferBytes} bytes`);
    if (!(p.backhitchSeconds >= 0)) throw new RangeError(`streaming model: backhitch of ${p.backhitchSeconds} s`);
    this.steps = [...p.stepsBytesPerSecond].sort((a, b) => a - b);
    this.capacity = p.bufferBytes;
    this.backhitchSeconds = p.backhitchSeconds;
    this.startBytes = Math.min(p.bufferBytes, p.startBytes ?? p.bufferBytes / 2);
    this.window = p.windowSeconds ?? 5;
    this.speed = this.steps[this.steps.length - 1] ?? 1;
    this.t = clock();
  }

  /**
   * A host WRITE of `bytes` (as stored). Buffered, it waits only for room in the buffer;
   * unbuffered (mode header BUFFERED MODE 0), until its data is on tape. Returns the wait
   * in device seconds.
   */
  write(bytes: number, buffered = true): number {
    const now = this.now();
    if (this.direction === 'read') this.dropReadAhead();
    this.direction = 'write';
    this.matchSpeed(now, bytes);
    this.fill += bytes;
    if (this.motion === 'stopped' && (this.fill >= this.startBytes || this.fill > this.capacity || !buffered)) this.start(now);
    if (!buffered) return this.blocked(this.timeToMove(this.fill));
    return this.blocked(this.fill > this.capacity ? this.timeToMove(this.fill - this.capacity) : 0);
  }

  /**
   * A host READ of `bytes` (as stored). After writing, the buffer goes to tape first and
   * the read starts from a stopped tape. Returns the wait in device seconds.
   */
  read(bytes: number): number {
    let now = this.now();
    let wait = 0;
    if (this.direction === 'write') {
      wait = this.drainTime();
      now += wait;
      this.advance(now);
    }
    if (this.direction !== 'read') {
      this.dropReadAhead();
      this.direction = 'read';
    }
    this.matchSpeed(now, bytes);
    if (this.fill < bytes && this.motion === 'stopped') this.start(now);
    if (this.fill < bytes) wait += this.timeToMove(bytes - this.fill);
    this.fill -= bytes;
    // Room again: a tape stopped by a full buffer reads ahead once there is enough of it.
    if (this.motion === 'stopped' && this.capacity - this.fill >= this.startBytes) this.start(now);
    return this.blocked(wait);
  }

  /**
   * Before the tape moves (REWIND, LOCATE, SPACE, UNLOAD, ...) or WRITE FILEMARKS with
   * IMMED 0: device seconds until what the host wrote is on tape, a reposition included
   * when the tape was stopped. Read-ahead is dropped (it costs nothing to forget).
   */
  flush(): number {
    this.now();
    if (this.direction === 'read') {
      this.dropReadAhead();
      return 0;
    }
    return this.drainTime();
  }

  /** After a tape move: the tape stands where the next transfer starts, the buffer empty. */
  positioned(): void {
    this.now();
    this.direction = 'idle';
    this.fill = 0;
    this.motion = 'stopped';
    this.placed = true;
    this.samples = [];
    this.head = 0;
    this.windowBytes = 0;
    this.windowBlocked = 0;
  }

  stats(): StreamingStats {
    this.now();
    return {
      speedMBps: this.speed / 1e6,
      motion: this.motion,
      direction: this.direction,
      backhitches: this.backhitches,
      bufferFillBytes: Math.round(Math.min(this.capacity, Math.max(0, this.fill))),
      bufferBytes: this.capacity,
      streamingSeconds: this.streamingSeconds,
      stoppedSeconds: this.stoppedSeconds,
      ...(this.hostRate === undefined ? {} : { hostMBps: this.hostRate / 1e6 }),
    };
  }

  // ------------------------------------------------------------------ internals

  private now(): number {
    const now = this.clock();
    this.advance(now);
    return Math.max(now, this.t);
  }

  /** Notes that the transfer just recorded waits `seconds` on the tape; returns them. */
  private blocked(seconds: number): number {
    const last = this.samples[this.samples.length - 1];
    if (last) {
      this.windowBlocked += seconds - last.blocked;
      last.blocked = seconds;
    }
    return seconds;
  }

  /** Writing: starts a stopped tape if need be and says when the buffer is empty. */
  private drainTime(): number {
    if (this.direction !== 'write' || this.fill <= 0) return 0;
    if (this.motion === 'stopped') this.start(this.t);
    return this.timeToMove(this.fill);
  }

  /** Forgets read-ahead; a tape still reading stops where it is and must reposition. */
  private dropReadAhead(): void {
    this.fill = 0;
    if (this.motion !== 'stopped') {
      this.motion = 'stopped';
      this.placed = false;
    }
  }

  private start(now: number): void {
    if (this.placed) {
      this.motion = 'streaming';
    } else {
      this.motion = 'repositioning';
      this.readyAt = now + this.backhitchSeconds;
      this.backhitches++;
    }
    this.placed = false;
  }

  /** Device seconds until the (started) tape has moved `bytes`. */
  private timeToMove(bytes: number): number {
    const reposition = this.motion === 'repositioning' ? Math.max(0, this.readyAt - this.t) : 0;
    return reposition + Math.max(0, bytes) / this.speed;
  }

  /**
   * Records a host transfer and picks the speed: the lowest step at or above the host's
   * rate over the window, the highest step when the host is faster. The rate is the bytes
   * before this transfer over the time since the oldest, less the time those transfers
   * waited on the tape: a host held back by a full buffer (or by a tape that must still
   * read its data) is not slower for it, and measuring what it got would pin the tape at
   * a lower step. With nothing before it in the window the speed stays.
   */
  private matchSpeed(now: number, bytes: number): void {
    for (let s = this.samples[this.head]; s && s.t < now - this.window; s = this.samples[this.head]) {
      this.windowBytes -= s.bytes;
      this.windowBlocked -= s.blocked;
      this.head++;
    }
    if (this.head === this.samples.length) {
      // An empty window: start the sums afresh (no rounding carried along).
      this.windowBytes = 0;
      this.windowBlocked = 0;
    }
    // Compact now and then so the array does not grow without end.
    if (this.head > 1024 && this.head * 2 > this.samples.length) {
      this.samples = this.samples.slice(this.head);
      this.head = 0;
    }
    const oldest = this.samples[this.head];
    if (oldest && now > oldest.t) {
      const own = now - oldest.t - this.windowBlocked;
      const top = this.steps[this.steps.length - 1] ?? this.speed;
      // No time of its own: the host only ever waited on the tape, it is faster than any step.
      this.hostRate = own > 1e-9 ? this.windowBytes / own : undefined;
      const rate = this.hostRate;
      this.speed = rate === undefined ? top : (this.steps.find((s) => s >= rate) ?? top);
    }
    this.samples.push({ t: now, bytes, blocked: 0 });
    this.windowBytes += bytes;
  }

  /** Runs the tape from the state's time to `now`. */
  private advance(now: number): void {
    let t = this.t;
    while (t < now) {
      if (this.motion === 'repositioning') {
        const end = Math.min(now, this.readyAt);
        this.stoppedSeconds += end - t;
        t = end;
        if (t >= this.readyAt) this.motion = 'streaming';
        continue;
      }
      if (this.motion === 'streaming') {
        const writing = this.direction === 'write';
        // Writing, the tape stops when the buffer is empty; reading, when it is full.
        const room = Math.max(0, writing ? this.fill : this.capacity - this.fill);
        const until = t + room / this.speed;
        const end = Math.min(now, until);
        const moved = (end - t) * this.speed;
        this.fill += writing ? -moved : moved;
        this.streamingSeconds += end - t;
        t = end;
        if (end >= until) {
          this.fill = writing ? 0 : this.capacity;
          this.motion = 'stopped';
          this.placed = false;
        }
        continue;
      }
      // Stopped: counted while a transfer waits on the tape (data to write, room to read into).
      const busy = this.direction === 'write' ? this.fill > 0 : this.direction === 'read' && this.fill < this.capacity;
      if (busy) this.stoppedSeconds += now - t;
      t = now;
    }
    this.t = Math.max(this.t, now);
  }
}
