/** `FANOUT_PUBLISH_REPLICAS` and `FANOUT_PUBLISH_REPLICAS_TIMEOUT_MS`. */
export interface PublishReplicas {
  /** Replicas that must confirm a publish before it is answered 200; 0: no WAIT. */
  count: number;
  timeoutMs: number;
}

export const NO_REPLICAS: PublishReplicas = { count: 0, timeoutMs: 1000 };
