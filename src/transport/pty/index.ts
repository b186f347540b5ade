export { openPty, PtyError } from './pty.js';
export type { PtyPair } from './pty.js';
