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
  /** The task that spawned it (README, "Traces"). */
  parent_id?: string;
  /** The trace it belongs to. */
  correlation_id?: string;
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
  /** Called for each `lifecycle` frame of a task the watch sees: its state changed for an agent. */
  onLifecycle?: (frame: LifecycleFrame) => void;
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
  /** The task that spawned this one. */
  parent_id?: string;
  /** The trace it belongs to. */
  correlation_id?: string;
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
  /** The agent whose group gave up on it (newer letters). */
  failed_agent?: string;
  /** The consumer that held it last. */
  failed_consumer?: string;
  /** Every failed attempt known, oldest first (cortex-shared `Attempt`). */
  attempts?: { at_ms: number; consumer: string; error: string }[];
  original_parent_id?: string;
  original_correlation_id?: string;
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

/** A task's state for one agent (cortex-shared `TaskState`). */
export type TaskState = "waiting" | "in_progress" | "retrying" | "done" | "dead" | "retried";

/** Something the relay did to a task (cortex-shared `LifecycleEvent`). */
export type LifecycleEvent =
  | "published" | "delivered" | "acked" | "nacked" | "reclaimed"
  | "dead_lettered" | "retried" | "deleted";

/**
 * What else a lifecycle record says, by event: `delivered` `{delivery}`, `acked` `{ms}`
 * (since the delivery), `nacked` `{error}`, `reclaimed` `{from}`, `dead_lettered`
 * `{dlq_id, error}`, `retried` `{dlq_id, stream, entry_id}`, `deleted` `{dlq_id}`.
 */
export interface LifecycleDetail {
  delivery?: number;
  ms?: number;
  error?: string;
  from?: string;
  dlq_id?: string;
  stream?: string;
  entry_id?: string;
  [key: string]: unknown;
}

/** One record of `cortex:lifecycle` (cortex-shared `LifecycleRecord`). */
export interface LifecycleRecord {
  /** Unix milliseconds. */
  at_ms: number;
  event: LifecycleEvent;
  task_id: string;
  stream: string;
  entry_id: string;
  /** The agent (group) it happened for; absent for `published`. */
  agent?: string;
  consumer?: string;
  detail?: LifecycleDetail;
}

/** The `lifecycle` frame a watch's `onLifecycle` gets (cortex-shared `ServerFrame::Lifecycle`). */
export interface LifecycleFrame {
  type: "lifecycle";
  task_id: string;
  stream: string;
  entry_id: string;
  /** Absent for `published` (the task's `to`). */
  agent?: string;
  /** The state after the event. */
  state: TaskState;
  event: LifecycleEvent;
  consumer?: string;
  /** Unix milliseconds. */
  at_ms: number;
  detail?: LifecycleDetail;
}

/** A stream entry (cortex-shared `EntryRef`). */
export interface EntryRef {
  stream: string;
  entry_id: string;
}

/** A task as the task API shows it (cortex-shared `TaskView`): its fields and where it is. */
export interface TaskView {
  id: string;
  from: string;
  /** Empty for every agent. */
  to: string;
  priority: Priority;
  type: string;
  payload: JsonObject;
  /** Unix seconds. */
  created: number;
  parent_id?: string;
  correlation_id?: string;
  stream: string;
  entry_id: string;
}

/** A task's state for one agent (cortex-shared `TaskAgentState`). */
export interface TaskAgentState {
  /** The agent, or the group's name for a group that is not `agent:<name>`. */
  agent: string;
  /** Such a group's name. */
  group?: string;
  state: TaskState;
  /** In progress or retrying: the consumer holding it. */
  consumer: string | null;
  /** Deliveries Redis counted. */
  deliveries: number;
  /** When it entered the state (unix ms), when known. */
  since_ms: number | null;
  /** Dead or retried: its dead letter's id. */
  dlq_id: string | null;
  last_error: string | null;
  /** Retried: the new entry. */
  retried_as?: EntryRef;
}

/** One step of a task's timeline (cortex-shared `TimelineItem`). */
export interface TimelineItem {
  /** Unix milliseconds. */
  at_ms: number;
  event: LifecycleEvent;
  agent?: string;
  consumer?: string;
  detail?: LifecycleDetail;
}

/** `task(id)` and `taskByEntry(stream, entryId)` (cortex-shared `TaskReply`). */
export interface TaskReply {
  task: TaskView;
  agents: TaskAgentState[];
  /** Oldest first. */
  timeline: TimelineItem[];
}

/** Which tasks `tasks(query)` lists. */
export interface TaskListQuery {
  agent: string;
  state: "in_progress" | "waiting" | "retrying";
  /** The previous page's `next`. */
  after?: string;
  count?: number;
}

/** One task of a list and its state for the agent (cortex-shared `TaskListItem`). */
export interface TaskListItem {
  task: TaskView;
  state: TaskAgentState;
}

/** A page of `tasks(query)`, oldest first (cortex-shared `TaskListReply`). */
export interface TaskListReply {
  items: TaskListItem[];
  /** Pass as `after` for the next page; `null` at the end. */
  next: string | null;
}

/** A task of a trace and those it spawned (cortex-shared `TraceNode`). */
export interface TraceNode {
  task: TaskView;
  agents: TaskAgentState[];
  /** Oldest first. */
  children: TraceNode[];
}

/** `trace(correlationId)` (cortex-shared `TraceReply`). */
export interface TraceReply {
  correlation_id: string;
  /** Tasks without a parent in the trace, oldest first. */
  roots: TraceNode[];
}

/** How many of an agent's tasks ended each way (cortex-shared `OutcomeCounts`). */
export interface OutcomeCounts {
  /** Acked. */
  done: number;
  /** Nacked, to be delivered again. */
  failed: number;
  /** Dead-lettered. */
  dead: number;
  /** Reclaimed from a consumer that did not ack in time. */
  timed_out: number;
}

/** One minute of an agent's outcomes (cortex-shared `MinuteOutcomes`). */
export interface MinuteOutcomes extends OutcomeCounts {
  /** The minute's start, unix milliseconds. */
  minute_ms: number;
}

/** `agentOutcomes(agent)` (cortex-shared `AgentOutcomes`). */
export interface AgentOutcomes {
  agent: string;
  /** When the relay read the counters, unix milliseconds. */
  now_ms: number;
  /** The current minute and the 4 before it. */
  last_5_min: OutcomeCounts;
  /** The current minute and the 59 before it. */
  last_hour: OutcomeCounts;
  /** Minutes with a count, oldest first. */
  minutes: MinuteOutcomes[];
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
