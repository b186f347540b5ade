/** A minimal valid topology document (two VTCs, both VTS on 127.0.0.1), for tests to extend. */
export function topologyBase() {
  return {
    ptpId: 'ptp1',
    secret: 'sixteen chars at least!',
    vtcs: [
      { id: 'vtc1', listen: '127.0.0.1:7101', journalDir: './j1' },
      { id: 'vtc2', listen: '127.0.0.1:7102', journalDir: './j2' },
    ],
    vts: { A: { listen: '127.0.0.1:7001', cacheDir: './a', stateDir: './as' }, B: { listen: '127.0.0.1:7002', cacheDir: './b', stateDir: './bs' } },
  };
}
