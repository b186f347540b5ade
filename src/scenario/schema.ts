/**
 * The scenario file (YAML): a timeline of events (host writes, operator commands in every
 * mode, VTS and VTC crashes and restarts, partitions, message loss) and the outcomes
 * expected after them. Reference: docs/scenarios.md.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

export class ScenarioFileError extends Error {
  override readonly name = 'ScenarioFileError';
  readonly code = 'ESCENARIO_FILE';
  constructor(message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
  }
}

const vts = z.enum(['A', 'B']);
const vtcName = z.string().min(1);
const mode = z.enum(['normal', 'expedite', 'immediate', 'forced']);
const ptpState = z.string().regex(/^(online-both|online-single\([AB]\)|offline|resync\([AB]->[AB]\))$/, 'a PtP status: online-both, online-single(A), offline, resync(A->B)');

const command = z
  .object({
    run: z.enum(['vts-out', 'vts-in', 'ptp-shutdown', 'ptp-start', 'threshold-set', 'override']),
    vts: z.string().optional(),
    mode: mode.optional(),
    threshold: z.number().optional(),
    /** threshold-set only: the audited override that lets a threshold below floor(n/2) through. */
    belowHalf: z.boolean().optional(),
    /** The operator's reason, recorded in the key of an override. */
    note: z.string().min(1).max(512).optional(),
    via: vtcName.optional(),
    /** The command must fail with this error code (EPTP_THRESHOLD, EPTP_NO_QUORUM...). */
    expectError: z.string().optional(),
    /** Retry after EPTP_NO_QUORUM or EPTP_CONFLICT, as an operator would (lossy networks). */
    retries: z.number().int().min(0).max(20).default(0),
  })
  .strict();

const expectation = z
  .object({
    /** PtP status every listed (default: every running) VTC must show. */
    ptp: ptpState.optional(),
    vtcs: z.array(vtcName).optional(),
    /** VTS in operation, as the VTS themselves report. */
    vtsIn: z.array(vts).optional(),
    /** `current` of the newest key, on every listed VTC. */
    current: z.array(vts).optional(),
    keySeq: z.number().int().nonnegative().optional(),
    threshold: z.number().int().nonnegative().optional(),
    /** The newest election every running VTC voted in, from the listed VTCs' views merged. */
    election: z.object({ vts, yes: z.number().int().nonnegative(), no: z.number().int().nonnegative().optional() }).strict().optional(),
    /** Ballots cast since the previous command step (0: on-line without a vote). */
    ballots: z.number().int().nonnegative().optional(),
    readable: z.record(z.string(), z.string()).optional(),
    unreadable: z.array(z.string()).optional(),
    within: z.number().int().positive().default(8000),
    /** The expectation must then keep holding for this long (e.g. "stays off-line"). */
    hold: z.number().int().nonnegative().default(0),
  })
  .strict();

export const stepSchema = z.union([
  z.object({ say: z.string() }).strict(),
  z
    .object({
      write: z
        .object({
          volser: z.string(),
          data: z.string(),
          via: vtcName.optional(),
          copyMode: z.enum(['immediate', 'deferred']).optional(),
          expectError: z.string().optional(),
          /**
           * A write kept in flight: the host mounts, writes the first half, holds the mount
           * this long, then writes the rest and closes. The step returns once the mount is
           * active; `await-writes` checks the outcome (in-process runs only).
           */
          holdMs: z.number().int().min(1).max(60_000).optional(),
        })
        .strict(),
    })
    .strict(),
  /** Waits for the writes kept in flight and checks each against its expectError (none: acknowledged). */
  z.object({ 'await-writes': z.literal(true) }).strict(),
  z.object({ command }).strict(),
  z.object({ 'crash-vts': vts }).strict(),
  z.object({ 'restart-vts': vts }).strict(),
  z.object({ 'crash-vtc': vtcName }).strict(),
  z.object({ 'restart-vtc': vtcName }).strict(),
  z.object({ partition: z.array(z.array(vtcName)).min(1) }).strict(),
  z.object({ heal: z.literal(true) }).strict(),
  z.object({ loss: z.number().min(0).max(0.9) }).strict(),
  z.object({ 'pause-copies': z.boolean() }).strict(),
  /** The listed VTCs lose their link to the VTS (healed by `heal`); in-process runs only. */
  z.object({ 'cut-vts-link': z.object({ vtcs: z.array(vtcName).min(1), vts }).strict() }).strict(),
  /** A backup of the VTS's disks, taken now; `restore-vts` puts it back while the VTS is down. In-process runs only. */
  z.object({ 'image-vts': vts }).strict(),
  z.object({ 'restore-vts': vts }).strict(),
  z.object({ wait: z.number().int().nonnegative() }).strict(),
  z.object({ expect: expectation }).strict(),
]);

export const scenarioSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'lower-case letters, digits and dashes'),
    title: z.string(),
    claims: z.array(z.number().int().min(1).max(25)).default([]),
    vtcs: z.number().int().min(2).max(64).default(4),
    copyMode: z.enum(['immediate', 'deferred']).default('immediate'),
    steps: z.array(stepSchema).min(1),
  })
  .strict();

export type Scenario = z.input<typeof scenarioSchema>;
export type ParsedScenario = z.output<typeof scenarioSchema>;
export type Step = z.output<typeof stepSchema>;
export type Expectation = z.output<typeof expectation>;

/** Validates a scenario document; throws {@link ScenarioFileError} naming the bad field. */
export function parseScenario(doc: unknown, where = 'scenario'): ParsedScenario {
  const r = scenarioSchema.safeParse(doc);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new ScenarioFileError(`${where}: ${i === undefined ? 'invalid' : `${i.path.join('.') || '(root)'}: ${i.message}`}`, r.error);
  }
  return r.data;
}

export function loadScenarioFile(path: string): ParsedScenario {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ScenarioFileError(`cannot read scenario ${path}: ${(e as Error).message}`, e);
  }
  return parseScenario(doc, path);
}
