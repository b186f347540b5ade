import { nodeFs, type PlatformFile, type PlatformFs } from '../../src/platform/fs.js';

/**
 * node:fs in which every file opened passes its calls through to the real file, except
 * those `wrap` replaces (given the path and the real file): a test's scripted failures and
 * logs, without restating every call it leaves alone.
 */
export function wrappedFs(wrap: (path: string, h: PlatformFile) => Partial<PlatformFile>): PlatformFs {
  return {
    ...nodeFs,
    open: async (path, flags) => {
      const h = await nodeFs.open(path, flags);
      const f: PlatformFile = {
        read: (b, off, len, pos) => h.read(b, off, len, pos),
        write: (b, off, len, pos) => h.write(b, off, len, pos),
        sync: () => h.sync(),
        datasync: () => h.datasync(),
        stat: () => h.stat(),
        truncate: (n) => h.truncate(n),
        close: () => h.close(),
      };
      if (h.startWriteback !== undefined) f.startWriteback = (offset, length) => h.startWriteback!(offset, length);
      return Object.assign(f, wrap(path, h));
    },
  };
}
