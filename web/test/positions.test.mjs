// Unit tests of src/positions.ts (the map's reader of GET /api/overview/positions), bundled by esbuild for node.
import { test } from "node:test";
import assert from "node:assert/strict";
import { build } from "esbuild";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { encodePositions } from "../e2e/positions.mjs";

const src = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../src");
const dir = await mkdtemp(path.join(os.tmpdir(), "iot-web-test-"));
const out = path.join(dir, "positions.mjs");
await build({ entryPoints: [path.join(src, "positions.ts")], bundle: true, format: "esm", platform: "node", outfile: out, logLevel: "warning" });
const u = await import(pathToFileURL(out).href);
await rm(dir, { recursive: true, force: true });

// encode is the layout as an ArrayBuffer, as fetch hands it to the reader.
function encode(devs, updatedAt) {
  const buf = encodePositions(devs, updatedAt);
  return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length);
}

test("decodePositions reads every column and id", () => {
  const devs = [
    { id: "a", lat: 50.5, lon: 14.25, seen: 1_800_000_000, status: 0 },
    { id: "dev-10.x_y", lat: -33.5, lon: 151.25, seen: 0, status: 2 },
    { id: "c", lat: NaN, lon: NaN, seen: 5, status: 1 },
  ];
  const p = u.decodePositions(encode(devs, 1_800_000_100));
  assert.equal(p.n, 3);
  assert.equal(p.updatedAt, 1_800_000_100);
  devs.forEach((d, i) => {
    assert.equal(p.id(i), d.id);
    assert.equal(p.status[i], d.status);
    assert.equal(p.lastSeen[i], d.seen);
    if (isNaN(d.lat)) assert.ok(isNaN(p.lat[i]) && isNaN(p.lon[i]));
    else assert.deepEqual([p.lat[i], p.lon[i]], [d.lat, d.lon]);
  });
});

test("decodePositions refuses a damaged answer", () => {
  const good = encode([{ id: "ab", lat: 1, lon: 2, seen: 3, status: 0 }], 0);
  const bytes = new Uint8Array(good);
  const cases = {
    "bad magic": (() => { const b = bytes.slice(); b[0] = 0x51; return b.buffer; })(),
    truncated: bytes.slice(0, bytes.length - 1).buffer,
    "trailing byte": (() => { const b = new Uint8Array(bytes.length + 1); b.set(bytes); return b.buffer; })(),
    "huge count": (() => { const b = bytes.slice(); new DataView(b.buffer).setUint32(4, 0xffffffff, true); return b.buffer; })(),
    empty: new ArrayBuffer(0),
  };
  for (const [name, buf] of Object.entries(cases)) assert.throws(() => u.decodePositions(buf), undefined, name);
});
