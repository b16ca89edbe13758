//! The TypeScript types of the plain objects the client takes and gives, added to the
//! declarations wasm-bindgen writes (`cortex_client.d.ts`), so that none is `any`.
//! Field names are the wire's (the task fields of the README's Redis layout, snake_case elsewhere); the
//! `cortex-shared` type each mirrors is named beside it.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &str = r#"
/** A task's priority; it also names its stream, `cortex:tasks:<priority>`. */
export type Priority = "critical" | "high" | "normal" | "low";

/** The connection's state, as `onState` reports it. */
export type ConnectionState = "connecting" | "connected" | "reconnecting" | "offline";

/** A JSON object. */
export type JsonObject = { [key: string]: unknown };

/**
 * The `ref` of a WebSocket frame to the relay (cortex-shared `Ref`): a string or a
 * number, at most 64 bytes as JSON. The relay echoes it in its replies to that frame
 * and in its `error` frames about it. The client gives one to every frame it waits on
 * (`watch`, `consume`, `heartbeat`, `ack`, `nack`) and settles each promise with the
 * reply that carries its ref, whatever the order; against a relay that echoes none,
 * by what the replies name and their order.
 */
export type FrameRef = string | number;

/**
 * A task as the relay delivers it (cortex-shared `TaskMessage`): the seven
 * fields, and the stream entry it was read from.
 */
export interface Task {
  id: string;
  from: string;
  /** The agent it is for; empty for every agent. */
  to: string;
  priority: Priority;
  type: string;
  payload: JsonObject;
  /** Unix seconds. */
  created: number;
  /** e.g. `cortex:tasks:high`. */
  stream: string;
  entry_id: string;
}

/** A consumed task: ack it when done, nack it when it failed. */
export interface DeliveredTask extends Task {
  /** How many times it has been delivered, this time included. */
  delivery_count: number;
  /** Done: the relay acks it in Redis; it will not come back. */
  ack(): Promise<Acked>;
  /** Failed: delivered again while deliveries are left, else dead-lettered with `error`. */
  nack(error: string): Promise<Nacked>;
}

export interface Acked {
  stream: string;
  entry_id: string;
}

export interface Nacked {
  stream: string;
  entry_id: string;
  /** Whether it went to the dead letter queue (no deliveries left). */
  dead_lettered: boolean;
}

/** Entries of `stream` after `after` were trimmed before they could be shown. */
export interface Gap {
  stream: string;
  after: string;
  resumed_from: string;
}

export interface WatchOptions {
  /** Newest entries per stream sent first (default 50, as the dashboard). */
  history?: number;
  /** Called when Redis trimmed entries the watch had not been shown. */
  onGap?: (gap: Gap) => void;
}

/** A task to publish (cortex-shared `PublishRequest`); the relay sets `id` and `created`. */
export interface NewTask {
  /** An agent name; empty or `*` for every agent. */
  to: string;
  priority: Priority;
  type: string;
  payload?: JsonObject;
  /** The sender; default `operator`. */
  from?: string;
}

/** A task written to its stream. */
export interface Published {
  /** The new task's id. */
  task_id: string;
  stream: string;
  entry_id: string;
}

/** A heartbeat written to `cortex:heartbeats`. */
export interface HeartbeatSent {
  stream: string;
  entry_id: string;
}

/** Which dead letters (cortex-shared `DlqListQuery`); every field narrows. */
export interface DlqFilter {
  agent?: string;
  priority?: Priority;
  type?: string;
  /** Text in the error, ignoring case. */
  error?: string;
  /** Text in the payload, ignoring case. */
  payload?: string;
  since_ms?: number;
  until_ms?: number;
  /** The previous page's `next_cursor`. */
  cursor?: string;
  /** Letters per page, 1 to 1000; default 50. */
  limit?: number;
}

/** A dead letter (cortex-shared `DlqItem`). */
export interface DeadLetter {
  dlq_id: string;
  original_id: string;
  original_from: string;
  original_to: string;
  original_priority: string;
  original_type: string;
  /** The task's payload as JSON text. */
  original_payload: string;
  original_created: string;
  error: string;
  retry_count: number;
  /** Unix seconds. */
  dead_at: number;
  original_stream?: string;
  original_entry_id?: string;
  /** Task fields the entry did not have (their `original_*` text is empty). */
  original_missing?: string[];
  /** Exact bytes (base64) of task fields that were not UTF-8 text. */
  original_bytes?: { [field: string]: string };
}

/** A page of dead letters, newest first. */
export interface DlqPage {
  items: DeadLetter[];
  next_cursor: string | null;
  scanned: number;
}

/** How to retry a dead letter (cortex-shared `RetryRequest`). */
export interface RetryOptions {
  priority?: Priority;
  /** Replaces the payload. */
  payload?: JsonObject;
  /** Replace the task's own fields (e.g. one the entry lacked); the task is `edited`. */
  id?: string;
  from?: string;
  /** An agent name, or "" / "*" for every agent. */
  to?: string;
  type?: string;
  /** Unix seconds. */
  created?: number;
}

export interface Retried {
  dlq_id: string;
  task_id: string;
  stream: string;
  entry_id: string;
  retry_count: number;
  edited: boolean;
}

export interface Deleted {
  dlq_id: string;
  deleted: boolean;
}

/**
 * Every promise of the client rejects with one of these: the relay's `code` and
 * `message` (e.g. `unauthorized`, `forbidden`, `not_found`, `unknown_delivery`,
 * `rate_limited` for the call whose frame the relay dropped, by its `FrameRef`), or the
 * client's own (`invalid_url`, `invalid_argument`, `invalid_agent`, `not_allowed`,
 * `network`, `bad_response`, `disconnected`, `timeout`, `closed`).
 */
export interface CortexError extends Error {
  name: "CortexError";
  code: string;
  /** The HTTP status, for errors of the HTTP API. */
  status?: number;
}
"#;
