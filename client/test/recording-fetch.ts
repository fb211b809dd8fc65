export interface FetchRecord {
  url: string;
  headers: Record<string, string>;
  at: number;
  status?: number;
  answeredAt?: number;
}

/** A fetch that passes through to the real one and records each request and its status. */
export function recordingFetch(): { fetch: typeof fetch; calls: FetchRecord[] } {
  const calls: FetchRecord[] = [];
  const f: typeof fetch = async (input, init) => {
    const rec: FetchRecord = { url: String(input), headers: Object.fromEntries(new Headers(init?.headers).entries()), at: Date.now() };
    calls.push(rec);
    const res = await fetch(input, init);
    rec.status = res.status;
    rec.answeredAt = Date.now();
    return res;
  };
  return { fetch: f, calls };
}
