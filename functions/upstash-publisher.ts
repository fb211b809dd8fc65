import type { Redis } from "@upstash/redis/cloudflare";
import type { PublishMessage, PublishResult } from "../protocol/publish-request.js";
import type { Publisher } from "../protocol/publisher.js";
import { PUBLISH_SCRIPT, publishScriptArgs, publishScriptResults, type LogSettings } from "../protocol/publish-script.js";
import type { CircuitBreaker } from "./circuit-breaker.js";

/**
 * Publishes through the shared publish script over Upstash REST: a batch is one EVALSHA
 * (EVAL once after a NOSCRIPT), so it is one round trip and atomic with its log append.
 */
export class UpstashPublisher implements Publisher {
  private readonly script;

  constructor(
    redis: Redis,
    private readonly log: LogSettings,
    private readonly breaker: CircuitBreaker,
  ) {
    this.script = redis.createScript<unknown>(PUBLISH_SCRIPT);
  }

  async publish(messages: PublishMessage[]): Promise<PublishResult[]> {
    const { keys, args } = publishScriptArgs(messages, this.log);
    const reply = await this.breaker.run("publish", () => this.script.exec(keys, args));
    return publishScriptResults(messages, reply);
  }
}
