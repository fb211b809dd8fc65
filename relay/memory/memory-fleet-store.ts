import type { BackendMemory, FleetStore } from "../ops/fleet-store.js";
import type { RelayReport } from "../ops/relay-report.js";

/** The embedded broker's fleet: this process's relays (one, outside tests), each with its TTL. */
export class MemoryFleetStore implements FleetStore {
  private readonly reports = new Map<string, { report: RelayReport; expires: number }>();

  async put(report: RelayReport, ttlMs: number): Promise<void> {
    this.reports.set(report.id, { report, expires: Date.now() + ttlMs });
  }

  async list(): Promise<RelayReport[]> {
    const now = Date.now();
    const out: RelayReport[] = [];
    for (const [id, e] of this.reports) {
      if (e.expires <= now) this.reports.delete(id);
      else out.push(e.report);
    }
    return out;
  }

  async backendMemory(): Promise<BackendMemory | undefined> {
    return undefined;
  }
}
