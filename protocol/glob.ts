/**
 * Redis glob matching for the relay and the functions. The matcher lives in the SDK
 * (client/glob.ts) because the SDK package must ship it on its own; this module is where
 * server code imports it from.
 */
export * from "../client/glob.js";
