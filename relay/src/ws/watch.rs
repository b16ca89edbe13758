//! A session's watch subscriptions (README, Delivery: watch): which agents it watches, and per
//! stream how far it has got, so that resume and history reads and the live feed
//! together send every entry at most once, in stream order.
//!
//! # How resume, history and the live feed fit together
//!
//! The hub routes to the session's feed every entry its subscriptions see that the
//! reader reads after the subscription was registered (which happens before any read
//! for it), so each reaches [`Watches::wants`] once, in stream order.
//! Per stream, the session's *mark* is the newest entry already judged: shown or
//! deliberately not (unsubscribed meanwhile, or older than a history window). Entries
//! no subscription sees never reach the session and do not move the mark; the reads
//! below only trust the mark for entries an existing subscription sees. It is
//! the higher of two positions: `live`, the newest event `wants` has judged, and
//! `floor`, the newest entry a read has judged; live events at or below the floor are
//! skipped.
//!
//! A `subscribe` with `resume` or `history` reads the stream up to its newest entry at
//! read time (`tail`), sends what it picked, and raises the floor to `tail`. Events the
//! hub delivered meanwhile (buffered by the session while it awaited the read) are then
//! skipped, so the read must also pick every entry above the mark that an *existing*
//! subscription of the session sees: the read is their delivery. Entries at or below the
//! mark that an existing subscription sees were judged already and are not sent
//! again; the others are sent when the new subscription asks for them. So on one
//! connection each entry is sent at most once, and each entry a subscription sees and
//! asked for (live, resumed, or within its history) at least once.
//!
//! A `subscribe` without either reads nothing and is live from the entries the session
//! has not judged yet, as the original agents expect (README, Redis layout).
//!
//! # Gaps and caps
//!
//! Resuming after `after`, a stream whose entries after it may have been removed (see
//! [`lost_after`](crate::store::xinfo::StreamInfo::lost_after)) gets a `gap` frame
//! before its entries, with `resumed_from` the oldest entry still present after
//! `after` (when none is left: the id after the newest ever generated). A resume needing more
//! than [`FRAME_CAP`] frames, or more than [`SCAN_CAP`] entries read, sends the newest
//! ones and a `gap` whose `resumed_from` is where they start: skipped entries are never
//! silent. History is a window, not a promise: it never makes a gap.

use crate::engine::history::watch_frame;
use crate::engine::hub::Event;
use crate::engine::reader::WatchReader;
use crate::store::streams::StreamSource;
use cortex_shared::{EntryId, ErrorCode, ServerFrame, SubscribeMode, SubscribeTarget};
use redis::RedisResult;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

/// Entries read per `XREVRANGE`.
const BATCH: usize = 1_000;

/// Entries read from Redis per stream for one subscribe, at most.
pub(crate) const SCAN_CAP: usize = 10_000;

/// Frames per stream one subscribe sends before the live ones, at most. The session
/// queues a subscribe's reply without waiting (`try_send`), into a queue of
/// `--send-queue` frames (default 1024); five streams at this cap, plus a few error and
/// gap frames, stay below it.
pub(crate) const FRAME_CAP: usize = 200;

/// How long a subscribe waits for its reads before it goes live without them.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// At most this many names are quoted back in an error about `resume`.
const QUOTED: usize = 5;

/// What one session watches.
#[derive(Debug, Default)]
pub(crate) struct Watches {
    targets: BTreeSet<SubscribeTarget>,
    /// Per stream, the newest entry a resume or history read judged; live events at
    /// or before it are skipped.
    floors: HashMap<&'static str, EntryId>,
    /// Per stream, the newest live event judged.
    live: HashMap<&'static str, EntryId>,
}

/// What a watch `subscribe` asks for beyond the agent.
#[derive(Debug, Default, Clone)]
pub(crate) struct WatchRequest {
    /// Last entry id seen per stream.
    pub(crate) resume: Option<BTreeMap<String, String>>,
    /// Newest entries per stream to send first.
    pub(crate) history: Option<u32>,
}

/// What a subscribe reads from one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// Every entry after this one.
    Resume(EntryId),
    /// The newest this many entries the new subscription sees.
    History(usize),
}

/// One stream's part of a subscribe's reply.
#[derive(Debug, Default)]
struct Replay {
    frames: Vec<ServerFrame>,
    /// The stream's newest entry when it was read (`None`: empty or absent).
    tail: Option<EntryId>,
}

impl Watches {
    /// Adds `target`; returns the frames to send before live ones (errors about the
    /// request, then per stream a gap if any and the missed or history entries), ending
    /// with `subscribed`.
    pub(crate) async fn subscribe(
        &mut self,
        target: SubscribeTarget,
        request: WatchRequest,
        redis: &redis::aio::ConnectionManager,
    ) -> Vec<ServerFrame> {
        let mut redis = redis.clone();
        self.subscribe_from(&mut redis, target, request).await
    }

    /// [`Watches::subscribe`] reading from any [`StreamSource`].
    async fn subscribe_from<S: StreamSource>(
        &mut self,
        source: &mut S,
        target: SubscribeTarget,
        request: WatchRequest,
    ) -> Vec<ServerFrame> {
        let (plan, mut frames) = plan(&request);
        if !plan.is_empty() {
            let others: Vec<SubscribeTarget> = self.targets.iter().cloned().collect();
            let mut done: Vec<(&'static str, Replay)> = Vec::new();
            let reads = async {
                for (stream, want) in plan {
                    let mark = self.mark(stream);
                    let replay = replay(source, stream, &target, &others, mark, want).await?;
                    done.push((stream, replay));
                }
                Ok::<_, redis::RedisError>(())
            };
            let failure = match tokio::time::timeout(READ_TIMEOUT, reads).await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some(format!("no answer within {READ_TIMEOUT:?}")),
            };
            for (stream, replay) in done {
                if let Some(tail) = replay.tail {
                    let floor = self.floors.entry(stream).or_insert(tail);
                    *floor = (*floor).max(tail);
                }
                frames.extend(replay.frames);
            }
            if let Some(error) = failure {
                // Streams not read stay live-only; their floors did not move.
                tracing::warn!(%error, agent = target.as_str(), "watch resume/history read failed; live only");
                frames.push(ServerFrame::error(
                    ErrorCode::RedisUnavailable,
                    "could not read the entries asked for (resume or history): Redis \
                     unavailable; watching new entries only",
                ));
            }
        }
        let agent = target.as_str().to_owned();
        self.targets.insert(target);
        frames.push(ServerFrame::Subscribed {
            agent,
            status: "ok".into(),
            mode: SubscribeMode::Watch,
            consumer: None,
        });
        frames
    }

    /// How many targets are watched.
    pub(crate) fn len(&self) -> usize {
        self.targets.len()
    }

    /// Removes `target`, or every target when `None`. The marks stay: they say what
    /// this connection has judged, whatever it watches next.
    pub(crate) fn unsubscribe(&mut self, target: Option<&SubscribeTarget>) {
        match target {
            Some(target) => {
                self.targets.remove(target);
            }
            None => self.targets.clear(),
        }
    }

    /// Whether `event` is for this session and not already sent. Records that the
    /// event's stream has been judged up to it.
    pub(crate) fn wants(&mut self, event: &Event) -> bool {
        if self
            .floors
            .get(event.stream)
            .is_some_and(|floor| event.entry_id <= *floor)
        {
            return false;
        }
        let live = self.live.entry(event.stream).or_insert(event.entry_id);
        *live = (*live).max(event.entry_id);
        self.targets
            .iter()
            .any(|target| event.audience.is_seen_by(target))
    }

    /// The newest entry of `stream` this session has judged, if any.
    fn mark(&self, stream: &str) -> Option<EntryId> {
        let floor = self.floors.get(stream).copied();
        let live = self.live.get(stream).copied();
        floor.max(live)
    }
}

/// Which watched streams to read and how, and `bad_frame` errors for what in the
/// request cannot be used: a stream that is not watched, an id that does not parse
/// (such a stream falls back to `history`, or to live).
fn plan(request: &WatchRequest) -> (Vec<(&'static str, Want)>, Vec<ServerFrame>) {
    let streams = WatchReader::streams();
    let mut resume: HashMap<&'static str, EntryId> = HashMap::new();
    let (mut unknown, mut bad_ids) = (Vec::new(), Vec::new());
    for (name, id) in request.resume.iter().flatten() {
        match streams.iter().find(|s| **s == name.as_str()) {
            None => unknown.push(quote(name)),
            Some(stream) => match id.parse::<EntryId>() {
                Ok(id) => {
                    resume.insert(stream, id);
                }
                Err(_) => bad_ids.push(format!("{}: {}", quote(name), quote(id))),
            },
        }
    }
    let mut errors = Vec::new();
    if !unknown.is_empty() {
        errors.push(ServerFrame::error(
            ErrorCode::BadFrame,
            format!(
                "resume names streams that are not watched: {}; watched streams are {}",
                list(&unknown),
                streams.join(", ")
            ),
        ));
    }
    if !bad_ids.is_empty() {
        errors.push(ServerFrame::error(
            ErrorCode::BadFrame,
            format!(
                "resume ids are not stream entry ids (<milliseconds>-<sequence>): {}",
                list(&bad_ids)
            ),
        ));
    }
    let history = request.history.filter(|n| *n > 0).map(|n| n as usize);
    let plan = streams
        .into_iter()
        .filter_map(|stream| {
            let want = match resume.get(stream) {
                Some(after) => Want::Resume(*after),
                None => Want::History(history?),
            };
            Some((stream, want))
        })
        .collect();
    (plan, errors)
}

fn quote(text: &str) -> String {
    const LONGEST: usize = 80;
    match text.char_indices().nth(LONGEST) {
        Some((cut, _)) => format!("{:?}…", &text[..cut]),
        None => format!("{text:?}"),
    }
}

fn list(items: &[String]) -> String {
    let mut shown = items[..items.len().min(QUOTED)].join(", ");
    if items.len() > QUOTED {
        shown.push_str(&format!(" and {} more", items.len() - QUOTED));
    }
    shown
}

/// The id right before `id`, if any.
fn before(id: EntryId) -> Option<EntryId> {
    match (id.ms, id.seq) {
        (0, 0) => None,
        (ms, 0) => Some(EntryId::new(ms - 1, u64::MAX)),
        (ms, seq) => Some(EntryId::new(ms, seq - 1)),
    }
}

/// The id right after `id`: where entries after it start.
fn after(id: EntryId) -> EntryId {
    match id.seq.checked_add(1) {
        Some(seq) => EntryId::new(id.ms, seq),
        None => EntryId::new(id.ms.saturating_add(1), 0),
    }
}

fn gap(stream: &str, after: EntryId, resumed_from: EntryId) -> ServerFrame {
    ServerFrame::Gap {
        stream: stream.to_owned(),
        after: after.to_string(),
        resumed_from: resumed_from.to_string(),
    }
}

/// Reads `stream` for a new subscription `target`, given the session's `others`
/// subscriptions (before this one; may include `target`) and its `mark` there.
async fn replay<S: StreamSource>(
    source: &mut S,
    stream: &'static str,
    target: &SubscribeTarget,
    others: &[SubscribeTarget],
    mark: Option<EntryId>,
    want: Want,
) -> RedisResult<Replay> {
    let Some(info) = source.info(stream).await? else {
        return Ok(Replay::default());
    };
    // Entries above the mark that existing subscriptions see are delivered by this
    // read, since raising the mark skips them in the live feed.
    let catch_up = mark.filter(|_| !others.is_empty());
    let Some(tail) = info.last else {
        let mut frames = Vec::new();
        if let Want::Resume(from) = want {
            if info.lost_after(from) {
                frames.push(gap(stream, from, after(info.last_generated)));
            }
        }
        return Ok(Replay { frames, tail: None });
    };
    // Nothing at or below `lower` is needed (None: as far back as history goes).
    let lower = match want {
        Want::Resume(from) => Some(catch_up.map_or(from, |m| m.min(from))),
        Want::History(_) => None,
    };

    let mut picked = Vec::new(); // newest first
    let mut scanned = 0;
    let mut seen_by_target = 0;
    let mut oldest_read: Option<EntryId> = None;
    let mut oldest_after_resume: Option<EntryId> = None;
    let mut up_to = Some(tail).filter(|t| lower.is_none_or(|l| *t > l));
    let mut cut_short = false;
    'read: while let Some(top) = up_to {
        let count = BATCH.min(SCAN_CAP - scanned);
        if count == 0 {
            cut_short = true;
            break;
        }
        let batch = source.newest_first(stream, top, lower, count).await?;
        let full = batch.len() == count;
        for entry in &batch {
            scanned += 1;
            let Ok(id) = entry.id.parse::<EntryId>() else {
                continue;
            };
            oldest_read = Some(id);
            if matches!(want, Want::Resume(from) if id > from) {
                oldest_after_resume = Some(id);
            }
            let judged = mark.is_some_and(|m| id <= m);
            if let Some((_, audience, frame)) = watch_frame(stream, entry) {
                let target_sees = audience.is_seen_by(target);
                let others_see = others.iter().any(|t| audience.is_seen_by(t));
                let asked = target_sees
                    && match want {
                        Want::Resume(from) => id > from,
                        Want::History(n) => seen_by_target < n,
                    };
                seen_by_target += usize::from(target_sees);
                let send = if judged {
                    asked && !others_see
                } else {
                    asked || (others_see && catch_up.is_some())
                };
                if send {
                    picked.push(frame);
                    if picked.len() == FRAME_CAP {
                        cut_short = true;
                        break 'read;
                    }
                }
            }
            if let Want::History(n) = want {
                if seen_by_target >= n && catch_up.is_none_or(|m| id <= m) {
                    break 'read;
                }
            }
        }
        up_to = if full {
            oldest_read.and_then(before)
        } else {
            None
        };
    }

    // What a cut-short read left out matters if a resume, or the catch-up of the
    // session's other subscriptions, needed it: then say so with a gap.
    let skipped_from = match want {
        Want::Resume(_) => lower,
        Want::History(_) => catch_up,
    };
    let mut frames = Vec::with_capacity(picked.len() + 1);
    let mut skipped = false;
    if cut_short {
        if let (Some(from), Some(oldest)) = (skipped_from, oldest_read) {
            // Anything left between `from` and what was read?
            skipped = match before(oldest) {
                Some(top) if top > from => !source
                    .newest_first(stream, top, Some(from), 1)
                    .await?
                    .is_empty(),
                _ => false,
            };
            if skipped {
                tracing::info!(stream, after = %from, resumed_from = %oldest, "replay capped; gap sent");
                frames.push(gap(stream, from, oldest));
            }
        }
    }
    if !skipped {
        if let Want::Resume(from) = want {
            if info.lost_after(from) {
                let resumed_from = oldest_after_resume.unwrap_or(after(info.last_generated));
                tracing::info!(stream, after = %from, %resumed_from, "entries trimmed before a resume; gap sent");
                frames.push(gap(stream, from, resumed_from));
            }
        }
    }
    frames.extend(picked.into_iter().rev());
    Ok(Replay {
        frames,
        tail: Some(tail),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::hub::Audience;
    use crate::store::xinfo::StreamInfo;
    use redis::streams::StreamId;
    use redis::Value;
    use serde_json::{json, Value as Json};
    use std::collections::BTreeMap;

    const HIGH: &str = "cortex:tasks:high";
    const HEARTBEATS: &str = "cortex:heartbeats";

    /// Streams in memory, trimmed and deleted from like Redis, counting reads.
    #[derive(Default)]
    struct FakeRedis {
        streams: HashMap<String, FakeStream>,
        reads: usize,
        fail: bool,
    }

    #[derive(Default)]
    struct FakeStream {
        entries: BTreeMap<EntryId, HashMap<String, Value>>,
        last_generated: EntryId,
        max_deleted: EntryId,
        added: u64,
    }

    impl FakeRedis {
        fn add(&mut self, stream: &str, ms: u64, fields: &[(&str, &str)]) -> EntryId {
            let s = self.streams.entry(stream.to_owned()).or_default();
            let id = EntryId::new(ms, 0);
            assert!(id > s.last_generated);
            s.last_generated = id;
            s.added += 1;
            let map = fields
                .iter()
                .map(|(k, v)| (k.to_string(), Value::BulkString(v.as_bytes().to_vec())))
                .collect();
            s.entries.insert(id, map);
            id
        }

        fn task(&mut self, stream: &str, ms: u64, to: &str) -> EntryId {
            let id = format!("t{ms}");
            self.add(
                stream,
                ms,
                &[
                    ("id", &id),
                    ("from", "harold"),
                    ("to", to),
                    ("priority", "high"),
                    ("type", "coding"),
                    ("payload", "{}"),
                    ("created", "1704556800"),
                ],
            )
        }

        fn trim_before(&mut self, stream: &str, first_kept: u64) {
            let s = self.streams.get_mut(stream).unwrap();
            s.entries.retain(|id, _| id.ms >= first_kept);
        }

        fn delete(&mut self, stream: &str, ms: u64) {
            let s = self.streams.get_mut(stream).unwrap();
            s.entries.remove(&EntryId::new(ms, 0));
            s.max_deleted = s.max_deleted.max(EntryId::new(ms, 0));
        }
    }

    fn io_error() -> redis::RedisError {
        redis::RedisError::from(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "refused",
        ))
    }

    impl StreamSource for FakeRedis {
        async fn info(&mut self, stream: &str) -> RedisResult<Option<StreamInfo>> {
            if self.fail {
                return Err(io_error());
            }
            Ok(self.streams.get(stream).map(|s| StreamInfo {
                length: s.entries.len() as u64,
                first: s.entries.keys().next().copied(),
                last: s.entries.keys().next_back().copied(),
                last_generated: s.last_generated,
                max_deleted: Some(s.max_deleted),
                entries_added: Some(s.added),
            }))
        }

        async fn newest_first(
            &mut self,
            stream: &str,
            up_to: EntryId,
            after: Option<EntryId>,
            count: usize,
        ) -> RedisResult<Vec<StreamId>> {
            if self.fail {
                return Err(io_error());
            }
            self.reads += 1;
            let Some(s) = self.streams.get(stream) else {
                return Ok(Vec::new());
            };
            Ok(s.entries
                .range(..=up_to)
                .rev()
                .take_while(|(id, _)| after.is_none_or(|a| **id > a))
                .take(count)
                .map(|(id, map)| StreamId {
                    id: id.to_string(),
                    map: map.clone(),
                    ..StreamId::default()
                })
                .collect())
        }
    }

    fn target(agent: &str) -> SubscribeTarget {
        SubscribeTarget::parse(agent).unwrap()
    }

    fn resume(pairs: &[(&str, &str)]) -> WatchRequest {
        WatchRequest {
            resume: Some(
                pairs
                    .iter()
                    .map(|(s, id)| (s.to_string(), id.to_string()))
                    .collect(),
            ),
            history: None,
        }
    }

    fn history(n: u32) -> WatchRequest {
        WatchRequest {
            resume: None,
            history: Some(n),
        }
    }

    fn event(stream: &'static str, ms: u64, to: &str) -> Event {
        Event {
            stream,
            entry_id: EntryId::new(ms, 0),
            audience: Audience::TaskFor(to.to_owned()),
            frame: format!("{ms}").into(),
        }
    }

    /// Frames as compact strings: `task:<entry ms>`, `heartbeat:<ms>`, `gap:<after>><from>`,
    /// `error:<code>`, `subscribed:<agent>`.
    fn summary(frames: &[ServerFrame]) -> Vec<String> {
        frames
            .iter()
            .map(|f| match f {
                ServerFrame::Task { entry_id, .. } => {
                    format!("task:{}", entry_id.trim_end_matches("-0"))
                }
                ServerFrame::Heartbeat { entry_id, .. } => {
                    format!("heartbeat:{}", entry_id.trim_end_matches("-0"))
                }
                ServerFrame::Gap {
                    after,
                    resumed_from,
                    ..
                } => format!("gap:{after}>{resumed_from}"),
                ServerFrame::Error { code, .. } => format!("error:{code}"),
                ServerFrame::Subscribed { agent, .. } => format!("subscribed:{agent}"),
                other => format!("{other:?}"),
            })
            .collect()
    }

    async fn subscribe(
        watches: &mut Watches,
        redis: &mut FakeRedis,
        agent: &str,
        request: WatchRequest,
    ) -> Vec<String> {
        summary(&watches.subscribe_from(redis, target(agent), request).await)
    }

    #[tokio::test]
    async fn resume_sends_what_the_target_missed_in_order_and_nothing_twice() {
        let mut redis = FakeRedis::default();
        for (ms, to) in [
            (1, "pink"),
            (2, "pink"),
            (3, "harold"),
            (4, ""),
            (5, "pink"),
        ] {
            redis.task(HIGH, ms, to);
        }
        let mut w = Watches::default();
        assert_eq!(
            subscribe(&mut w, &mut redis, "pink", resume(&[(HIGH, "1-0")])).await,
            ["task:2", "task:4", "task:5", "subscribed:pink"]
        );
        // Buffered while reading: at or before the tail, already sent or not pink's.
        assert!(!w.wants(&event(HIGH, 5, "pink")));
        assert!(!w.wants(&event(HIGH, 3, "harold")));
        assert!(w.wants(&event(HIGH, 6, "pink")));
        assert!(!w.wants(&event(HIGH, 7, "harold")));
        // Other streams are live as usual.
        assert!(w.wants(&event("cortex:tasks:low", 1, "")));
    }

    #[tokio::test]
    async fn a_resume_at_the_newest_entry_sends_nothing_and_no_gap() {
        let mut redis = FakeRedis::default();
        redis.task(HIGH, 1, "pink");
        redis.task(HIGH, 2, "pink");
        let mut w = Watches::default();
        assert_eq!(
            subscribe(&mut w, &mut redis, "pink", resume(&[(HIGH, "2-0")])).await,
            ["subscribed:pink"]
        );
        // Trimmed up to and including the client's entry, nothing newer: no gap either.
        redis.trim_before(HIGH, 3);
        assert_eq!(
            subscribe(
                &mut Watches::default(),
                &mut redis,
                "pink",
                resume(&[(HIGH, "2-0")])
            )
            .await,
            ["subscribed:pink"]
        );
        // An absent stream: nothing at all.
        assert_eq!(
            subscribe(
                &mut Watches::default(),
                &mut redis,
                "pink",
                resume(&[(HEARTBEATS, "2-0")])
            )
            .await,
            ["subscribed:pink"]
        );
    }

    #[tokio::test]
    async fn trimmed_entries_make_a_gap_before_the_survivors() {
        let mut redis = FakeRedis::default();
        for ms in 1..=6 {
            redis.task(HIGH, ms, "pink");
        }
        redis.trim_before(HIGH, 5);
        assert_eq!(
            subscribe(
                &mut Watches::default(),
                &mut redis,
                "pink",
                resume(&[(HIGH, "2-0")])
            )
            .await,
            ["gap:2-0>5-0", "task:5", "task:6", "subscribed:pink"]
        );
        // Deleted in the middle: the gap still shows (XDEL moves max-deleted-entry-id).
        redis.delete(HIGH, 6);
        redis.task(HIGH, 7, "pink");
        assert_eq!(
            subscribe(
                &mut Watches::default(),
                &mut redis,
                "pink",
                resume(&[(HIGH, "5-0")])
            )
            .await,
            ["gap:5-0>7-0", "task:7", "subscribed:pink"]
        );
        // Everything after the client's entry gone, nothing new: the gap says where
        // new entries will start.
        redis.trim_before(HIGH, 100);
        assert_eq!(
            subscribe(
                &mut Watches::default(),
                &mut redis,
                "pink",
                resume(&[(HIGH, "5-0")])
            )
            .await,
            ["gap:5-0>7-1", "subscribed:pink"]
        );
    }

    #[tokio::test]
    async fn history_is_the_newest_n_the_target_sees_oldest_first() {
        let mut redis = FakeRedis::default();
        for (ms, to) in [
            (1, "pink"),
            (2, ""),
            (3, "harold"),
            (4, "pink"),
            (5, "harold"),
        ] {
            redis.task(HIGH, ms, to);
        }
        redis.add(
            HEARTBEATS,
            9,
            &[("agent", "pink"), ("time", "1"), ("status", "{}")],
        );
        redis.add(HEARTBEATS, 10, &[("agent", "pink"), ("time", "oops")]);
        let mut w = Watches::default();
        assert_eq!(
            subscribe(&mut w, &mut redis, "pink", history(2)).await,
            ["task:2", "task:4", "heartbeat:9", "subscribed:pink"]
        );
        assert!(!w.wants(&event(HIGH, 5, "harold")));
        assert!(!w.wants(&event(HIGH, 4, "pink")));
        assert!(w.wants(&event(HIGH, 6, "pink")));
        // A resumed stream takes its resume, the others their history.
        let mut w = Watches::default();
        assert_eq!(
            subscribe(
                &mut w,
                &mut redis,
                "*",
                WatchRequest {
                    resume: Some([(HIGH.to_owned(), "3-0".to_owned())].into()),
                    history: Some(1),
                }
            )
            .await,
            ["task:4", "task:5", "heartbeat:9", "subscribed:*"]
        );
    }

    #[tokio::test]
    async fn a_second_subscription_on_the_connection_repeats_nothing_and_loses_nothing() {
        let mut redis = FakeRedis::default();
        for (ms, to) in [(1, "pink"), (2, ""), (3, "harold")] {
            redis.task(HIGH, ms, to);
        }
        let mut w = Watches::default();
        assert_eq!(
            subscribe(&mut w, &mut redis, "pink", history(10)).await,
            ["task:1", "task:2", "subscribed:pink"]
        );
        // Entries added while harold's subscribe reads are still in the session's hub
        // queue; the read delivers pink's among them, since the raised mark skips them.
        redis.task(HIGH, 4, "pink");
        redis.task(HIGH, 5, "harold");
        assert_eq!(
            subscribe(&mut w, &mut redis, "harold", history(10)).await,
            ["task:3", "task:4", "task:5", "subscribed:harold"]
        );
        for (ms, to) in [(4, "pink"), (5, "harold")] {
            assert!(!w.wants(&event(HIGH, ms, to)), "{ms} was sent by the read");
        }
        assert!(w.wants(&event(HIGH, 6, "")));
    }

    #[tokio::test]
    async fn a_long_resume_is_capped_with_a_gap_and_keeps_the_newest() {
        let mut redis = FakeRedis::default();
        let total = FRAME_CAP as u64 + 50;
        for ms in 1..=total {
            redis.task(HIGH, ms, "pink");
        }
        let frames = subscribe(
            &mut Watches::default(),
            &mut redis,
            "pink",
            resume(&[(HIGH, "0-0")]),
        )
        .await;
        assert_eq!(frames.len(), FRAME_CAP + 2);
        assert_eq!(frames[0], "gap:0-0>51-0");
        assert_eq!(frames[1], "task:51");
        assert_eq!(frames[FRAME_CAP], format!("task:{total}"));

        // Exactly at the cap: all sent, nothing skipped, no gap.
        let frames = subscribe(
            &mut Watches::default(),
            &mut redis,
            "pink",
            resume(&[(HIGH, "50-0")]),
        )
        .await;
        assert_eq!(frames.len(), FRAME_CAP + 1);
        assert_eq!(frames[0], "task:51");
    }

    #[tokio::test]
    async fn reading_is_bounded_when_the_target_sees_little() {
        let mut redis = FakeRedis::default();
        let total = SCAN_CAP as u64 + 2 * BATCH as u64;
        for ms in 1..=total {
            redis.task(HIGH, ms, if ms == 1 { "pink" } else { "harold" });
        }
        let frames = subscribe(&mut Watches::default(), &mut redis, "pink", history(5)).await;
        assert_eq!(frames, ["subscribed:pink"]);
        assert_eq!(redis.reads, SCAN_CAP / BATCH);
        // A resume that cannot read back far enough says so.
        let frames = subscribe(
            &mut Watches::default(),
            &mut redis,
            "pink",
            resume(&[(HIGH, "0-0")]),
        )
        .await;
        let oldest_read = total - SCAN_CAP as u64 + 1;
        assert_eq!(
            frames,
            [format!("gap:0-0>{oldest_read}-0"), "subscribed:pink".into()]
        );
    }

    #[tokio::test]
    async fn unusable_resume_entries_get_errors_and_the_rest_goes_on() {
        let mut redis = FakeRedis::default();
        redis.task(HIGH, 1, "pink");
        redis.task(HIGH, 2, "pink");
        let mut w = Watches::default();
        let frames = w
            .subscribe_from(
                &mut redis,
                target("pink"),
                WatchRequest {
                    resume: Some(
                        [
                            ("cortex:tasks:dlq".to_owned(), "1-0".to_owned()),
                            ("nope".to_owned(), "1-0".to_owned()),
                            (HEARTBEATS.to_owned(), "x-1".to_owned()),
                            (HIGH.to_owned(), "1-0".to_owned()),
                        ]
                        .into(),
                    ),
                    history: None,
                },
            )
            .await;
        assert_eq!(
            summary(&frames),
            [
                "error:bad_frame",
                "error:bad_frame",
                "task:2",
                "subscribed:pink"
            ]
        );
        let messages: Vec<Json> = frames[..2]
            .iter()
            .map(|f| serde_json::to_value(f).unwrap()["message"].clone())
            .collect();
        assert!(messages[0]
            .as_str()
            .unwrap()
            .contains(r#""cortex:tasks:dlq", "nope""#));
        assert!(messages[1]
            .as_str()
            .unwrap()
            .contains(r#""cortex:heartbeats": "x-1""#));
        assert!(w.wants(&event(HIGH, 3, "pink")));
    }

    #[tokio::test]
    async fn without_redis_the_subscription_is_live_with_an_error() {
        let mut redis = FakeRedis {
            fail: true,
            ..FakeRedis::default()
        };
        let mut w = Watches::default();
        let frames = w
            .subscribe_from(&mut redis, target("pink"), history(10))
            .await;
        assert_eq!(
            summary(&frames),
            ["error:redis_unavailable", "subscribed:pink"]
        );
        assert_eq!(
            serde_json::to_value(&frames[1]).unwrap(),
            json!({"type":"subscribed","agent":"pink","status":"ok"})
        );
        assert!(w.wants(&event(HIGH, 1, "pink")));
    }

    #[tokio::test]
    async fn a_plain_subscribe_reads_nothing() {
        let mut redis = FakeRedis::default();
        redis.task(HIGH, 1, "pink");
        let mut w = Watches::default();
        assert_eq!(
            subscribe(&mut w, &mut redis, "pink", WatchRequest::default()).await,
            ["subscribed:pink"]
        );
        assert_eq!(redis.reads, 0);
        assert!(w.wants(&event(HIGH, 1, "pink")));
        w.unsubscribe(None);
        assert!(!w.wants(&event(HIGH, 2, "pink")));
    }

    #[test]
    fn ids_next_to_each_other() {
        assert_eq!(before(EntryId::new(5, 1)), Some(EntryId::new(5, 0)));
        assert_eq!(before(EntryId::new(5, 0)), Some(EntryId::new(4, u64::MAX)));
        assert_eq!(before(EntryId::ZERO), None);
        assert_eq!(after(EntryId::new(4, u64::MAX)), EntryId::new(5, 0));
        assert_eq!(after(EntryId::new(4, 1)), EntryId::new(4, 2));
    }
}
