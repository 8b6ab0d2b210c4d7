// The API client: every call carries the operator key (kept in sessionStorage, so it dies with the tab) in the
// Authorization header, never in the URL.

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

export interface Answer<T> {
  status: number;
  data: T;
  headers: Headers;
}

export async function call<T>(method: string, path: string, body?: unknown, key = getKey()): Promise<Answer<T>> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
  let res: Response;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: ctl.signal, cache: "no-store" });
  } catch (e) {
    throw new ApiError(0, ctl.signal.aborted ? "the request timed out" : `the API cannot be reached (${(e as Error).message})`);
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
    if (res.status === 401 || res.status === 403) msg = `${msg || "refused"}: check the operator key`;
    throw new ApiError(res.status, `${res.status}: ${msg}`);
  }
  return { status: res.status, data: data as T, headers: res.headers };
}

export const enc = encodeURIComponent;

// checkKey asks the API whether a key is accepted, before the page keeps it: "ok", "refused" or an error message.
export async function checkKey(key: string): Promise<"ok" | "refused" | string> {
  try {
    await call("GET", "/api/devices?limit=1", undefined, key);
    return "ok";
  } catch (e) {
    if (e instanceof ApiError && (e.status === 401 || e.status === 403)) return "refused";
    return (e as Error).message;
  }
}

export type Status = "online" | "late" | "silent";

export interface Device {
  deviceId: string;
  createdAt: string;
  updatedAt: string;
  lastSeen?: string | null;
  status?: Status;
  lat?: number;
  lon?: number;
}

// nextLink returns the rel="next" target of a Link header, when it is a same-origin API path.
export function nextLink(link: string | null): string | null {
  if (!link) return null;
  for (const part of link.split(",")) {
    const m = /<([^>]+)>\s*;\s*rel="?next"?/.exec(part.trim());
    if (m && m[1].startsWith("/api/devices")) return m[1];
  }
  return null;
}

// DeviceSort is the device list's order: by id, the longest unseen first, or the most recently seen first.
export type DeviceSort = "id" | "lastSeen" | "-lastSeen";

export interface PageQuery {
  limit: number;
  status?: Status;
  q?: string;
  sort: DeviceSort;
}

// pagePath is the first page's request for a query.
export function pagePath(p: PageQuery): string {
  const v = new URLSearchParams({ limit: String(p.limit) });
  if (p.status) v.set("status", p.status);
  if (p.q) v.set("q", p.q);
  if (p.sort !== "id") v.set("sort", p.sort);
  return `/api/devices?${v.toString()}`;
}

export interface DevicePage {
  devices: Device[];
  next: string | null; // the next page's request (the API's Link: rel="next")
}

// devicePage reads one page of the device list: the server filters, searches and sorts, a page at a time.
export async function devicePage(path: string): Promise<DevicePage> {
  const res = await call<Device[]>("GET", path);
  return { devices: res.data ?? [], next: nextLink(res.headers.get("Link")) };
}

export interface Counts {
  registered: number;
  online: number;
  late: number;
  silent: number;
  asOf: string | null; // the fleet-health run the statuses are from
}

export async function deviceCounts(): Promise<Counts> {
  return (await call<Counts>("GET", "/api/devices/counts")).data;
}

export interface DeviceConfig {
  influx_url: string;
  influx_org: string;
  influx_token?: string;
  influx_bucket: string;
  id: string;
  default_lat: number;
  default_lon: number;
  measurement_interval: number;
  newlyRegistered?: boolean;
  createdAt: string;
  updatedAt: string;
  serverTime?: string;
  configuration_refresh: number;
  write_endpoint?: string;
}

// Job is the answer of the write-missing routes and of the job route.
export interface Job {
  jobId: string;
  state: "planning" | "running" | "done" | "failed" | "cancelled";
  cancelledAt?: string;
  from?: string;
  to?: string;
  devices?: number;
  devicesDone?: number;
  chunks?: number;
  chunksDone?: number;
  chunksFailed?: number;
  pointsPlanned?: number;
  pointsWritten?: number;
  createdAt?: string;
  updatedAt?: string;
  deadline?: string;
  error?: string;
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

export interface Summary {
  fields?: Record<string, FieldSummary>;
  lastEntry?: string | null;
}
