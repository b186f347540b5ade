/**
 * What a VTC's control endpoint accepts, as zod schemas: every request is checked here
 * before anything runs, on the server (src/vtc/rpc.ts refuses a request that does not fit,
 * naming the field) and in the operator's client (the same error without a round trip).
 */
import { z } from 'zod';
import type { ZodType } from 'zod';
import type { OperatorCommand } from '../ptp/engine.js';

const vts = z.enum(['A', 'B']);
const mode = z.enum(['normal', 'expedite', 'immediate', 'forced']);
/** A VOLSER: 1-6 of A-Z and 0-9 (the VTS refuses anything else too). */
/** The operator's reason for an audited override, recorded in the key. */
const note = z.string().min(1).max(1024).optional();
const volser = z.string().regex(/^[A-Z0-9]{1,6}$/, 'a VOLSER is 1-6 characters A-Z, 0-9');

/** Operator commands for a PtP system of `n` VTCs (`OperatorCommand` in src/ptp/engine.ts). */
export function operatorCommandSchema(n: number) {
  return z.discriminatedUnion('command', [
    z.object({ command: z.literal('vts-out'), vts, mode }).strict(),
    z.object({ command: z.literal('vts-in'), vts }).strict(),
    z.object({ command: z.literal('ptp-shutdown'), mode }).strict(),
    z.object({ command: z.literal('ptp-start') }).strict(),
    z
      .object({
        command: z.literal('threshold-set'),
        threshold: z
          .number()
          .int('the threshold must be a whole number')
          .min(0, 'the threshold must be at least 0')
          .max(n - 1, `the threshold must be below the number of VTCs (${n}): 0 <= T < n`),
        mode: mode.optional(),
        belowHalf: z.boolean().optional(),
        note,
      })
      .strict(),
    z.object({ command: z.literal('override'), vts, note }).strict(),
  ]);
}

// A command the schema lets through is one the engine takes (a field added on one side only fails the typecheck here).
export const asOperatorCommand = (c: z.infer<ReturnType<typeof operatorCommandSchema>>): OperatorCommand => c;

/** Params of every control method, for a PtP system with the VTCs `vtcs`. A method not listed is refused. */
export function controlMethods(vtcs: readonly string[]): Readonly<Record<string, ZodType>> {
  const none = z.object({}).strict();
  return {
    status: none,
    elections: none,
    command: z.object({ cmd: operatorCommandSchema(vtcs.length), timeoutMs: z.number().int().min(1).max(3_600_000).optional() }).strict(),
    'write-volume': z.object({ volser, copyMode: z.enum(['immediate', 'deferred']).optional() }).strict(),
    'read-volume': z.object({ volser }).strict(),
    faults: z
      .object({
        cut: z.array(z.enum(vtcs as [string, ...string[]])).max(vtcs.length).optional(),
        loss: z.number().min(0).max(0.99).optional(),
        pauseCopies: z.boolean().optional(),
      })
      .strict(),
  };
}

/** `field: problem; field: problem` for the first few issues of a failed parse. */
export function describeIssues(err: z.ZodError, prefix = ''): string {
  return err.issues
    .slice(0, 4)
    .map((i) => {
      const path = [prefix, ...i.path.map(String)].filter((s) => s !== '').join('.');
      return `${path === '' ? '(request)' : path}: ${i.message}`;
    })
    .join('; ');
}
