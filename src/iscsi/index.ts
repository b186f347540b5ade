/** iSCSI for ptpvts: PDU codec, text and negotiation, login/CHAP, the initiator session. */
export * from './constants.js';
export * from './pdu.js';
export * from './text.js';
export * from './negotiate.js';
export * from './chap.js';
export * from './errors.js';
export * from './login.js';
export * from './pdu-socket.js';
export * from './session.js';
export * from './discovery.js';
