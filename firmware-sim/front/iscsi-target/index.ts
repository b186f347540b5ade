export { startIscsiTarget, defaultIqn, type IscsiTargetHandle, type IscsiTargetOptions, type IscsiTargetChap, type IscsiTargetStats, type IscsiTargetObserver, type IscsiSessionInfo } from './target.js';
export { serveTarget, parsePortal, PortalError } from './serve.js';
