export { FanoutClient, type ConnectionStatus, type FanoutClientOptions, type MessageHandler, type MessagesOptions } from "./fanout-client.js";
export { publish, type PublishMessage, type PublishOptions, type PublishResult, type BatchPublishResult } from "./publish.js";
export { FanoutClientError } from "./errors.js";
export { SseParser, type SseEvent, type SseParserHandlers } from "./sse-parser.js";
export type { Envelope, EventMap, ReadyInfo, ResetInfo, ResetReason } from "./envelope.js";
export type { BackoffOptions } from "./backoff.js";
export type { Names, SubscribeOptions, SubscribedInfo } from "./subscription-changes.js";
export type { PresenceList, PresenceMember, PresenceOptions, PresenceStats } from "./presence.js";
export { ChannelStore, type ChannelSnapshot, type ChannelStoreOptions } from "./channel-store.js";
