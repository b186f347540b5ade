/**
 * The emulator's iSCSI target, as its users import it: {@link startIscsiTarget} and the
 * types around it. The parts: server.ts (listener, sessions), connection.ts (one
 * connection and its PDUs), cmdsn-window.ts, task.ts (commands and Data-Out),
 * responder.ts (Data-In and SCSI Response), tmf.ts (task management), text.ts, login.ts.
 */
export { startIscsiTarget, defaultIqn } from './server.js';
export type { IscsiTargetHandle, IscsiTargetOptions, IscsiTargetChap, IscsiTargetStats, IscsiTargetObserver, IscsiSessionInfo } from './options.js';
