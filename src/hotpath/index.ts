export { VoteTally } from './vote-tally.js';
export { VoteTallyRef } from './vote-tally-ref.js';
export {
  BALLOT_SIZE,
  DECISION_SIZE,
  MAX_ELECTORATE,
  MAX_WINDOW,
  Choice,
  Outcome,
  CastStatus,
  encodeBallots,
  decodeBallot,
} from './ballots.js';
export type { Ballot, Decision, CastResult, ElectionState, TallyStats, VoteTallyOptions, VoteTallyApi } from './ballots.js';
export { KeyJournal } from './key-journal.js';
export { KeyJournalRef } from './key-journal-ref.js';
export { KeyJournalError, KeyJournalCorruptError, KeyJournalErrorCode } from './journal-types.js';
export type { AppendResult, RecoveryReport, SalvageReport, KeyJournalOpenOptions, KeyJournalApi } from './journal-types.js';
export { decodeJournal, scanJournal, encodeRecord, crc32cJs, HEADER_SIZE, MAX_RECORD } from './journal-format.js';
export type { DecodedJournal, JournalScan, JournalDamage } from './journal-format.js';
