/**
 * Prometheus metrics of `ptpvts sim serve`: SCSI commands by opcode and status, bytes moved,
 * command latency, iSCSI sessions and drive states, each labelled with the library. The
 * command path only increments children looked up once per (library, opcode, status), so a
 * scrape-ready registry costs no allocation per command once warmed.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type Counter as CounterT, type Histogram as HistogramT } from 'prom-client';
import { opcodeName } from '../scsi/opcodes.js';
import { statusName } from '../scsi/status.js';

/** What one library shows at scrape time: its drives' states, read from the models. */
export interface LibraryGaugeSource {
  readonly library: string;
  /** Drive number (1-based) and state name (`empty`, `loaded`, `hung`, `offline`, ...). */
  driveStates(): Iterable<readonly [drive: number, state: string]>;
  /** Sessions logged in now. */
  sessions(): number;
}

/** Every drive state the gauge reports, so a state a drive left shows 0 rather than vanishing. */
export const DRIVE_STATES = ['empty', 'loading', 'loaded', 'unloaded', 'ejected', 'offline', 'hung'] as const;

/** Counters for one library's target, handed to its observer. */
export interface LibraryCommandMetrics {
  /** One answered command (see `IscsiTargetObserver.commandDone`). */
  command(deviceType: number, opcode: number, status: number, bytesIn: number, bytesOut: number, seconds: number): void;
  /** A session logged in or out. */
  session(delta: 1 | -1): void;
}

interface Children {
  readonly count: ReturnType<CounterT<string>['labels']>;
  readonly latency: ReturnType<HistogramT<string>['labels']>;
}

/** The registry of one `sim serve` process. */
export class SimMetrics {
  readonly registry = new Registry();
  private readonly commands: Counter<'library' | 'opcode' | 'status'>;
  private readonly latency: Histogram<'library' | 'opcode'>;
  private readonly bytesRead: Counter<'library'>;
  private readonly bytesWritten: Counter<'library'>;
  private readonly logins: Counter<'library'>;
  private readonly sources: LibraryGaugeSource[] = [];

  constructor(o: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.commands = new Counter({ name: 'ptpvts_sim_commands_total', help: 'SCSI commands answered, by opcode name and status name', labelNames: ['library', 'opcode', 'status'], registers });
    this.latency = new Histogram({
      name: 'ptpvts_sim_command_duration_seconds',
      help: 'Time from a command’s arrival to its answer',
      labelNames: ['library', 'opcode'],
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers,
    });
    this.bytesRead = new Counter({ name: 'ptpvts_sim_read_bytes_total', help: 'Data-In bytes sent to initiators', labelNames: ['library'], registers });
    this.bytesWritten = new Counter({ name: 'ptpvts_sim_written_bytes_total', help: 'Data-Out bytes received from initiators', labelNames: ['library'], registers });
    this.logins = new Counter({ name: 'ptpvts_sim_logins_total', help: 'iSCSI sessions logged in', labelNames: ['library'], registers });
    const sources = this.sources;
    new Gauge({
      name: 'ptpvts_sim_sessions',
      help: 'iSCSI sessions logged in now',
      labelNames: ['library'],
      registers,
      collect() {
        for (const s of sources) this.set({ library: s.library }, s.sessions());
      },
    });
    new Gauge({
      name: 'ptpvts_sim_drive_state',
      help: 'Tape drive state: 1 for the state the drive is in, 0 for the others',
      labelNames: ['library', 'drive', 'state'],
      registers,
      collect() {
        for (const s of sources) {
          for (const [drive, state] of s.driveStates()) {
            for (const st of new Set<string>([...DRIVE_STATES, state])) this.set({ library: s.library, drive: String(drive), state: st }, st === state ? 1 : 0);
          }
        }
      },
    });
    if (o.processMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'ptpvts_sim_' });
  }

  /** Metrics of one served library; `source` is read at every scrape. */
  forLibrary(source: LibraryGaugeSource): LibraryCommandMetrics {
    this.sources.push(source);
    const library = source.library;
    const bytesRead = this.bytesRead.labels(library);
    const bytesWritten = this.bytesWritten.labels(library);
    const logins = this.logins.labels(library);
    // Keyed by device type, opcode and status in one number: no string is built per command.
    const children = new Map<number, Children>();
    const latencyBy = new Map<number, ReturnType<HistogramT<string>['labels']>>();
    return {
      command: (deviceType, opcode, status, bytesIn, bytesOut, seconds) => {
        const key = (deviceType << 16) | (opcode << 8) | status;
        let c = children.get(key);
        if (!c) {
          const op = opcodeName(deviceType, opcode);
          const lk = (deviceType << 8) | opcode;
          let latency = latencyBy.get(lk);
          if (!latency) latencyBy.set(lk, (latency = this.latency.labels(library, op)));
          c = { count: this.commands.labels(library, op, statusName(status)), latency };
          children.set(key, c);
        }
        c.count.inc();
        c.latency.observe(seconds);
        if (bytesIn) bytesRead.inc(bytesIn);
        if (bytesOut) bytesWritten.inc(bytesOut);
      },
      session: (delta) => {
        if (delta > 0) logins.inc();
      },
    };
  }

  /** The exposition text (what a scrape gets). */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}
