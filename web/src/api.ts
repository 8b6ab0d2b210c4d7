// The API client: every call carries the operator key (kept in sessionStorage, so it dies with the tab) as a bearer.

const KEY_STORAGE = "iot-center.operatorKey";

export function getKey(): string {
  return sessionStorage.getItem(KEY_STORAGE) ?? "";
}

export function setKey(key: string): void {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
}

export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

// The device id rule of the API, checked here too so a typo is explained before any request.
export const DEVICE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

const TIMEOUT_MS = 30_000;

export async function call<T>(method: string, path: string, body?: unknown): Promise<{ status: number; data: T }> {
  const headers: Record<string, string> = { Accept: "application/json" };
  const key = getKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
  let res: Response;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: ctl.signal, cache: "no-store" });
  } catch (e) {
    throw new ApiError(0, ctl.signal.aborted ? "the request timed out" : `network error: ${(e as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
  const text = await res.text();
  let data: unknown = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    let msg = (data as { error?: string; message?: string } | null)?.error ?? (data as { message?: string } | null)?.message ?? res.statusText;
    if (res.status === 401 || res.status === 403) msg = `${msg || "refused"} — check the operator key`;
    throw new ApiError(res.status, `${res.status}: ${msg}`);
  }
  return { status: res.status, data: data as T };
}

export const enc = encodeURIComponent;

export interface Device {
  deviceId: string;
  createdAt: string;
  updatedAt: string;
  authorizationId: string;
}

export interface DeviceConfig {
  influx_url: string;
  influx_org: string;
  influx_token: string;
  influx_bucket: string;
  id: string;
  default_lat: number;
  default_lon: number;
  measurement_interval: number;
  newlyRegistered: boolean;
  createdAt: string;
  updatedAt: string;
  serverTime: string;
  configuration_refresh: number;
  write_endpoint: string;
}

export interface Plan {
  deviceId?: string;
  from: string;
  to: string;
  missing: number;
  chunks: number;
  devices?: { deviceId: string; missing: number; chunks: number }[];
}

export interface Coverage {
  from: string;
  to: string;
  expected: number;
  present: number;
  missing: number;
  percent: number;
}

export interface Measurements {
  deviceId: string;
  start: string;
  stop: string;
  every: string;
  fields: string[];
  time: string[];
  values: Record<string, (number | null)[]>;
}

export interface FieldSummary {
  count?: number;
  min?: number | null;
  max?: number | null;
  mean?: number | null;
  last?: number | null;
  lastTime?: string | null;
}

// The summary's exact envelope belongs to the query function; accept the field map at the top level or under
// "fields", and the last entry time as lastEntry / lastEntryTime.
export function summaryFields(s: Record<string, unknown>): Record<string, FieldSummary> {
  const inner = s["fields"];
  if (inner && typeof inner === "object" && !Array.isArray(inner)) return inner as Record<string, FieldSummary>;
  const out: Record<string, FieldSummary> = {};
  for (const [k, v] of Object.entries(s)) if (v && typeof v === "object" && !Array.isArray(v)) out[k] = v as FieldSummary;
  return out;
}

export function summaryLastEntry(s: Record<string, unknown>): string | null {
  const v = s["lastEntry"] ?? s["lastEntryTime"] ?? s["last_entry"];
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as { time?: unknown }).time === "string") return (v as { time: string }).time;
  return null;
}
