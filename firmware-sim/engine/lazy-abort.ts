/**
 * An abort controller whose `AbortSignal` is made only when someone asks for it. Most
 * commands finish without anybody listening for an abort (TEST UNIT READY, a buffered
 * WRITE), so a front or unit that keeps one per command pays for the real controller
 * only when a handler actually waits on it. Aborting before or after the signal exists
 * behaves the same: the signal, once made, is already aborted with the same reason.
 */
export class LazyAbort {
  private controller: AbortController | undefined = undefined;
  private why: unknown = undefined;
  private followers: LazyAbort | LazyAbort[] | undefined = undefined;
  /** True once {@link abort} was called. */
  aborted = false;

  /** The signal (made on first use). */
  get signal(): AbortSignal {
    let c = this.controller;
    if (!c) {
      c = this.controller = new AbortController();
      if (this.aborted) c.abort(this.why);
    }
    return c.signal;
  }

  /** Aborts (once): the signal if made, then every follower. */
  abort(reason?: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.why = reason;
    this.controller?.abort(reason);
    const f = this.followers;
    this.followers = undefined;
    if (f instanceof LazyAbort) f.abort(reason);
    else if (f) for (const x of f) x.abort(reason);
  }

  /** `other` aborts when this does (at once when this already has). */
  link(other: LazyAbort): void {
    if (this.aborted) return other.abort(this.why);
    const f = this.followers;
    if (!f) this.followers = other;
    else if (f instanceof LazyAbort) this.followers = [f, other];
    else f.push(other);
  }

  unlink(other: LazyAbort): void {
    const f = this.followers;
    if (f === other) this.followers = undefined;
    else if (Array.isArray(f)) {
      const i = f.indexOf(other);
      if (i >= 0) f.splice(i, 1);
    }
  }
}
