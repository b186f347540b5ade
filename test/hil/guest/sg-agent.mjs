// Runs inside the HIL guest. Serves SCSI commands from the host over a virtio-serial port
// by executing them with the project's real SG_IO binding against the guest kernel's
// /dev/sgN nodes, so the host-side conformance suite exercises SgioPort, the Linux sg
// driver, virtio-scsi and QEMU's iSCSI initiator end to end.
//
// Frame (both directions): u32 BE total length, u32 BE JSON length, JSON, payload bytes.
import { open } from 'node:fs/promises';
import { SgioPort, listSgDevices } from '/opt/ptpvts/dist/src/transport/sgio/index.js';

const portPath = process.argv[2] ?? '/dev/vport1p1';
const fh = await open(portPath, 'r+');
const ports = new Map();
let nextHandle = 1;

async function writeFrame(obj, payload = new Uint8Array(0)) {
  const json = Buffer.from(JSON.stringify(obj));
  const head = Buffer.alloc(8);
  head.writeUInt32BE(4 + json.length + payload.length, 0);
  head.writeUInt32BE(json.length, 4);
  const frame = Buffer.concat([head, json, payload]);
  let off = 0;
  while (off < frame.length) {
    const { bytesWritten } = await fh.write(frame, off, frame.length - off);
    off += bytesWritten;
  }
}

async function handle(req, payload) {
  try {
    switch (req.op) {
      case 'list':
        return [
          {
            id: req.id,
            ok: true,
            devices: (await listSgDevices()).map((d) => ({ path: d.path, scsiType: d.scsiType, vendor: d.vendor ?? '', model: d.model ?? '' })),
          },
        ];
      case 'open': {
        const port = await SgioPort.open(req.path);
        const h = nextHandle++;
        ports.set(h, port);
        return [{ id: req.id, ok: true, handle: h }];
      }
      case 'close': {
        await ports.get(req.handle)?.close();
        ports.delete(req.handle);
        return [{ id: req.id, ok: true }];
      }
      case 'execute': {
        const port = ports.get(req.handle);
        if (!port) throw Object.assign(new Error(`no open handle ${req.handle}`), { code: 'EBADF' });
        const res = await port.execute({
          cdb: Buffer.from(req.cdb, 'hex'),
          direction: req.direction,
          ...(req.direction === 'out' ? { dataOut: payload } : {}),
          ...(req.direction === 'in' ? { dataInLength: req.dataInLength } : {}),
          ...(req.timeoutMs ? { timeoutMs: req.timeoutMs } : {}),
        });
        return [
          { id: req.id, ok: true, status: res.status, sense: Buffer.from(res.sense).toString('hex'), residual: res.residual },
          res.data,
        ];
      }
      case 'quit':
        setTimeout(() => process.exit(0), 10);
        return [{ id: req.id, ok: true }];
      default:
        throw Object.assign(new Error(`unknown op ${String(req.op)}`), { code: 'EINVAL' });
    }
  } catch (err) {
    return [{ id: req.id, ok: false, error: { code: err.code ?? 'EIO', errno: err.errno, syscall: err.syscall, message: String(err.message) } }];
  }
}

let buf = Buffer.alloc(0);
const chunk = Buffer.alloc(1 << 20);
console.log('@@HIL agent-ready');
for (;;) {
  const { bytesRead } = await fh.read(chunk, 0, chunk.length, null);
  if (bytesRead === 0) {
    await new Promise((r) => setTimeout(r, 5));
    continue;
  }
  buf = Buffer.concat([buf, chunk.subarray(0, bytesRead)]);
  while (buf.length >= 4) {
    const total = buf.readUInt32BE(0);
    if (buf.length < 4 + total) break;
    const jsonLen = buf.readUInt32BE(4);
    const req = JSON.parse(buf.subarray(8, 8 + jsonLen).toString());
    const payload = Buffer.from(buf.subarray(8 + jsonLen, 4 + total));
    buf = buf.subarray(4 + total);
    // Commands run one at a time, in order, as the conformance suite issues them.
    const [res, data] = await handle(req, payload);
    await writeFrame(res, data);
  }
}
