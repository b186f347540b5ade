/** Public surface of the protocol core. */
export * from './types.js';
export * from './errors.js';
export { VtcEngine, DEFAULT_TIMING } from './engine.js';
export type { CommandResult, Effect, EngineConfig, EngineDeps, EngineInput, EngineStats, OperatorCommand, TallyFactory, Timing, VtsOp, VtsResult } from './engine.js';
export { MODE_POLICY, BrokenRule, checkThreshold, checkVts, decideVote, defaultThreshold, deriveStatus, effectiveKey, genesisKey, isOnline, isStrong, transition } from './rules.js';
export { RecordSigner, canonicalJson, canonicalBytes } from './codec.js';
export { HmacSha256, tagsEqual } from './mac.js';
export type { MacAlgorithm } from './mac.js';
export { parseMessage } from './messages.js';
export type { PeerMessage } from './messages.js';
export { planWrite, applyWrite, reconcileTokens, behindList, copyVolume, CopyMode } from './volumes.js';
export type { Token, VolumeCopy, WritePlan, WriteTarget } from './volumes.js';
export type { Clock, Storage, TimerHandle, VtsPort } from './ports.js';
export { MemoryJournal } from './memory-journal.js';
export { SeededRandom } from './random.js';
export type { Random } from './random.js';
