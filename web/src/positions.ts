// The fleet's positions as GET /api/overview/positions answers them (shared/positions' columnar layout), viewed in
// place: typed arrays over the one buffer, ids decoded only when asked for. 100,000 devices parse in milliseconds.

export const STATUS_NAMES = ["online", "late", "silent", "unknown"] as const;
export type MapStatus = (typeof STATUS_NAMES)[number];

export interface Positions {
  n: number;
  updatedAt: number; // epoch seconds, 0: unknown
  lat: Float32Array;
  lon: Float32Array;
  lastSeen: Uint32Array; // epoch seconds, 0: never
  status: Uint8Array; // index into STATUS_NAMES
  id(i: number): string;
}

const HEADER = 16;

// decodePositions reads the layout, checking every length; a damaged answer throws instead of drawing a wrong fleet.
export function decodePositions(buf: ArrayBuffer): Positions {
  const dv = new DataView(buf);
  if (buf.byteLength < HEADER || dv.getUint32(0, false) !== 0x504f5331 /* "POS1" */) throw new Error("not a positions answer");
  const n = dv.getUint32(4, true);
  if (buf.byteLength < HEADER + 14 * n) throw new Error("positions answer too short");
  const lat = new Float32Array(buf, HEADER, n);
  const lon = new Float32Array(buf, HEADER + 4 * n, n);
  const lastSeen = new Uint32Array(buf, HEADER + 8 * n, n);
  const status = new Uint8Array(buf, HEADER + 12 * n, n);
  const bytes = new Uint8Array(buf);
  const start = new Uint32Array(n + 1);
  let p = HEADER + 13 * n;
  for (let i = 0; i < n; i++) {
    const len = bytes[p];
    if (!len || p + 1 + len > bytes.length) throw new Error("positions answer damaged");
    start[i] = p + 1;
    p += 1 + len;
  }
  start[n] = p;
  if (p !== bytes.length) throw new Error("positions answer damaged");
  const ids: (string | undefined)[] = new Array(n);
  return {
    n, updatedAt: dv.getUint32(8, true), lat, lon, lastSeen, status,
    id(i: number): string {
      let s = ids[i];
      if (s === undefined) {
        s = "";
        for (let k = start[i]; k < start[i] + bytes[start[i] - 1]; k++) s += String.fromCharCode(bytes[k]);
        ids[i] = s;
      }
      return s;
    },
  };
}
