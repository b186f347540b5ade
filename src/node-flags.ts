/**
 * Node options every long-running ptpvts process starts with: `bin/ptpvts.js` carries them
 * on its `#!` line, the systemd units and the container image on their command lines, and
 * whatever spawns a ptpvts server (the scenario harness, the benchmarks) passes them too,
 * so a measured server runs as a deployed one does (test/cli/deploy.test.ts keeps the copies
 * equal to this list).
 *
 * `--initial-old-space-size=128`: the data path holds 256 KiB blocks for a while (Data-Out
 * gathered, frames on their way, records queued for the disk), so they outlive a scavenge and
 * count against V8's old generation, whose limit starts from the live heap (about 20 MB
 * here). Started that small, the limit made V8 run a full mark-compact every 40-60 ms while
 * a drive streamed: 87 in one VTC for 1 GiB written through it, a quarter of its busy time
 * (`--trace-gc`, bench/host-library.bench.ts). Starting the old generation at 128 MiB lets
 * the scavenger free those buffers: no mark-compact in the same run, for at most 128 MiB more
 * heap before the first one. 64 MiB left a few (1-4 per process); semi-space size did not help.
 */
export const NODE_FLAGS: readonly string[] = ['--initial-old-space-size=128'];
