/**
 * Services talking through edge-fanout: an order service publishes `order.created` and
 * `order.cancelled` on channels `orders.created` / `orders.cancelled`; an inventory service
 * and a notification service each subscribe with the pattern `orders.*` and process every
 * event exactly once by its envelope id, even when they restart from an older checkpoint
 * and the relay replays what they had already handled.
 *
 * Run against a local relay (`npm start` in another terminal):
 *
 *     npx tsx examples/microservices.ts [relay-url]   # default http://localhost:8080 (or $FANOUT_URL)
 *
 * With FANOUT_PUBLISH_KEYS set on the relay, pass one as $FANOUT_PUBLISH_KEY.
 */
import { pathToFileURL } from "node:url";
import { FanoutClient, publish, type Envelope } from "../client/index.js";

export interface MicroservicesOptions {
  baseUrl?: string;
  key?: string;
  log?: (line: string) => void;
}

interface Order {
  orderId: string;
  sku: string;
  qty: number;
  email: string;
}

/**
 * A subscriber service. `processed` stands in for a table with a unique key on the event
 * id, written in the same transaction as the effect; `checkpoints` for where the service
 * stores the last id it has seen (its last entry), to resume from after a restart.
 */
class Service {
  readonly processed = new Set<string>();
  skipped = 0;
  readonly checkpoints: string[] = [];
  private client?: FanoutClient;

  constructor(
    readonly name: string,
    private readonly baseUrl: string,
    private readonly handle: (e: Envelope<Order>) => void,
    private readonly log: (line: string) => void,
  ) {}

  /** Subscribes (from `lastEventId` when resuming); resolves once live. */
  start(lastEventId?: string): Promise<void> {
    const client = new FanoutClient({ url: this.baseUrl, patterns: ["orders.*"], lastEventId });
    this.client = client;
    client.on<Order>("*", (e, raw) => {
      if (this.processed.has(e.id)) {
        this.skipped++;
        this.log(`${this.name}: already processed ${e.id}, skipping`);
      } else {
        this.handle(e);
        this.processed.add(e.id);
      }
      this.checkpoints.push(raw.lastEventId);
    });
    client.onReset((reason) => this.log(`${this.name}: history lost (${reason}); reconcile from the order database`));
    client.onError((err) => this.log(`${this.name}: ${err.code} ${err.message}`));
    return new Promise((resolve) => client.onReady(() => resolve()));
  }

  stop(): void {
    this.client?.close();
  }
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function main(opts: MicroservicesOptions = {}) {
  const baseUrl = opts.baseUrl ?? "http://localhost:8080";
  const log = opts.log ?? console.log;
  const stock = new Map<string, number>([["sku-1", 10], ["sku-2", 5]]);
  const emails: string[] = [];

  const inventory = new Service("inventory", baseUrl, (e) => {
    const delta = e.type === "order.cancelled" ? e.data.qty : -e.data.qty;
    stock.set(e.data.sku, (stock.get(e.data.sku) ?? 0) + delta);
    log(`inventory: ${e.type} ${e.data.orderId} → ${e.data.sku} stock ${stock.get(e.data.sku)}`);
  }, log);
  const notifications = new Service("notify", baseUrl, (e) => {
    emails.push(`${e.data.email}: ${e.type} ${e.data.orderId}`);
    log(`notify: email ${e.data.email} about ${e.type} ${e.data.orderId}`);
  }, log);
  await Promise.all([inventory.start(), notifications.start()]);

  // The order service. The idempotency id makes a retried publish (after a timeout, say) harmless.
  const order = (o: Order, type: "order.created" | "order.cancelled") =>
    publish(baseUrl, { channel: type === "order.created" ? "orders.created" : "orders.cancelled", type, data: o, id: `${type}:${o.orderId}` }, { key: opts.key });
  const o1 = { orderId: "o-1", sku: "sku-1", qty: 2, email: "ann@example.com" };
  const o2 = { orderId: "o-2", sku: "sku-2", qty: 1, email: "bo@example.com" };
  await order(o1, "order.created");
  const retried = await order(o1, "order.created");
  log(`orders: retried o-1 publish → duplicate=${retried.duplicate}`);
  await order(o2, "order.created");
  await pause(200);

  // Inventory crashes and restarts from a checkpoint saved before it handled o-2:
  // the relay replays o-2, and the processed-id check keeps the stock right.
  inventory.stop();
  await inventory.start(inventory.checkpoints[0]);
  await order(o1, "order.cancelled");
  await pause(300);

  inventory.stop();
  notifications.stop();
  return { stock: Object.fromEntries(stock), emails, inventorySkipped: inventory.skipped, retriedWasDuplicate: retried.duplicate };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main({ baseUrl: process.argv[2] ?? process.env.FANOUT_URL, key: process.env.FANOUT_PUBLISH_KEY });
}
