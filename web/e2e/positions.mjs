// encodePositions lays devices out as shared/positions.Encode does (shared/store/README.md), written independently
// of the Go code and of src/positions.ts: the unit tests decode it, the overview e2e seeds the snapshot with it.
export function encodePositions(devs, updatedAt) {
  const n = devs.length;
  const ids = devs.map((d) => Buffer.from(d.id, "ascii"));
  const buf = Buffer.alloc(16 + 13 * n + ids.reduce((s, b) => s + 1 + b.length, 0));
  buf.write("POS1", 0, "ascii");
  buf.writeUInt32LE(n, 4);
  buf.writeUInt32LE(updatedAt, 8);
  devs.forEach((d, i) => {
    buf.writeFloatLE(d.lat, 16 + 4 * i);
    buf.writeFloatLE(d.lon, 16 + 4 * n + 4 * i);
    buf.writeUInt32LE(d.seen, 16 + 8 * n + 4 * i);
    buf.writeUInt8(d.status, 16 + 12 * n + i);
  });
  let p = 16 + 13 * n;
  for (const b of ids) {
    buf.writeUInt8(b.length, p);
    b.copy(buf, p + 1);
    p += 1 + b.length;
  }
  return buf;
}
