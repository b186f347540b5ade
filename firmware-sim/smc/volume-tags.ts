/**
 * Volume tags beyond the label a barcode reader sees (SMC-3 6.6, 6.7, 6.16): the send
 * action codes of SEND VOLUME TAG, the 40-byte volume identification template, and the
 * template matching that REQUEST VOLUME ELEMENT ADDRESS reports the result of.
 *
 * Template parameter list (SEND VOLUME TAG Data-Out):
 *   0..31  volume identification template (ASCII, blank padded; `*` and `?` wildcards
 *          only in a translate)
 *   32..33 reserved
 *   34..35 minimum volume sequence number (assert/replace: the sequence number)
 *   36..37 reserved
 *   38..39 maximum volume sequence number
 */
import { getU16 } from '../../src/scsi/bytes.js';
import { SendVolumeTagAction } from '../../src/scsi/cdb.js';
import { invalidParamField } from '../engine/check.js';

/** SEND VOLUME TAG send action codes (CDB byte 5, bits 4..0): the client's table. */
export const SendAction = SendVolumeTagAction;
export type SendAction = SendVolumeTagAction;

/** Length of the SEND VOLUME TAG parameter list. */
export const TEMPLATE_LENGTH = 40;

export type TagKind = 'primary' | 'alternate';

/** What a send action code asks for; undefined for a reserved code. */
export function describeAction(code: number): { readonly op: 'translate'; readonly search: 'all' | TagKind; readonly ignoreSequence: boolean } | { readonly op: 'assert' | 'replace' | 'undefine'; readonly tag: TagKind } | undefined {
  switch (code) {
    case 0x00:
    case 0x01:
    case 0x02:
    case 0x05:
    case 0x06:
    case 0x07: {
      const k = code & 0x03;
      return { op: 'translate', search: k === 0 ? 'all' : k === 1 ? 'primary' : 'alternate', ignoreSequence: code >= 0x05 };
    }
    case 0x08:
    case 0x09:
      return { op: 'assert', tag: code === 0x08 ? 'primary' : 'alternate' };
    case 0x0a:
    case 0x0b:
      return { op: 'replace', tag: code === 0x0a ? 'primary' : 'alternate' };
    case 0x0c:
    case 0x0d:
      return { op: 'undefine', tag: code === 0x0c ? 'primary' : 'alternate' };
    default:
      return undefined;
  }
}

/** A volume tag: VOLUME IDENTIFIER without its blank padding, and VOLUME SEQUENCE NUMBER. */
export interface VolumeTagValue {
  readonly identifier: string;
  readonly sequence: number;
}

/** A decoded volume identification template. */
export interface VolumeTemplate {
  /** The template without trailing blanks. */
  readonly pattern: string;
  readonly minSequence: number;
  readonly maxSequence: number;
}

/**
 * Decodes and checks a 40-byte template. `wildcards` allows `*` and `?` (translate);
 * without it the template is a volume identifier and must not be blank. Bad fields raise
 * ILLEGAL REQUEST / INVALID FIELD IN PARAMETER LIST pointing at the offending byte.
 */
export function decodeTemplate(p: Uint8Array, wildcards: boolean): VolumeTemplate {
  let end = 32;
  while (end > 0 && p[end - 1] === 0x20) end--;
  let pattern = '';
  for (let i = 0; i < end; i++) {
    const c = p[i] ?? 0;
    // Printable ASCII only; blanks only as padding after the identifier.
    if (c <= 0x20 || c > 0x7e) invalidParamField(i, 7);
    const ch = String.fromCharCode(c);
    if (!wildcards && (ch === '*' || ch === '?')) invalidParamField(i, 7);
    pattern += ch;
  }
  if (pattern.length === 0) invalidParamField(0, 7);
  for (const r of [32, 33, 36, 37]) if ((p[r] ?? 0) !== 0) invalidParamField(r, 7);
  const minSequence = getU16(p, 34);
  const maxSequence = getU16(p, 38);
  if (wildcards && minSequence > maxSequence) invalidParamField(34, 7);
  return { pattern, minSequence, maxSequence };
}

/**
 * Whether `identifier` matches a template pattern: `?` stands for one character, `*` for
 * any run of characters (none included); everything else matches itself exactly.
 */
export function matchesPattern(pattern: string, identifier: string): boolean {
  // Iterative glob with one backtrack point: linear enough for 32-character identifiers.
  let p = 0;
  let s = 0;
  let star = -1;
  let mark = 0;
  while (s < identifier.length) {
    const pc = pattern[p];
    if (pc === '?' || (pc !== undefined && pc !== '*' && pc === identifier[s])) {
      p++;
      s++;
    } else if (pc === '*') {
      star = p++;
      mark = s;
    } else if (star >= 0) {
      p = star + 1;
      s = ++mark;
    } else return false;
  }
  while (pattern[p] === '*') p++;
  return p === pattern.length;
}

/** Whether a tag satisfies a translate request. */
export function tagMatches(tag: VolumeTagValue | undefined, t: VolumeTemplate, ignoreSequence: boolean): boolean {
  if (!tag) return false;
  if (!ignoreSequence && (tag.sequence < t.minSequence || tag.sequence > t.maxSequence)) return false;
  return matchesPattern(t.pattern, tag.identifier);
}
