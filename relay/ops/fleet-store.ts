import type { RelayReport } from "./relay-report.js";

/** Memory figures of the shared Redis (INFO memory), when there is one. */
export interface BackendMemory {
  usedMemoryBytes: number;
  /** 0: no maxmemory set. */
  maxMemoryBytes: number;
}

/**
 * Where relays leave their heartbeat reports for each other: each report lives for `ttlMs`
 * unless refreshed, so a relay that dies without a word leaves the fleet by itself.
 */
export interface FleetStore {
  put(report: RelayReport, ttlMs: number): Promise<void>;
  /** Every live relay's latest report. */
  list(): Promise<RelayReport[]>;
  /** The shared backend's memory, or undefined (embedded broker, or INFO refused). */
  backendMemory(): Promise<BackendMemory | undefined>;
}
