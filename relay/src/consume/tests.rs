//! The delivery order, through the fake Redis (`fake.rs`): a task is pending before it
//! is sent and acked only once the client acked it, replies come in order and `acked`
//! only once Redis took the ack, letters are written with their ack and once, and a
//! fault or a consumer dropped at any step loses no task and acks none the client did
//! not ack.

use super::fake::{FakeRedis, Fault, Kind, Trigger};
use super::{Consumer, ConsumerCommand, ConsumerEvent, DeliverySettings, Key};
use cortex_shared::lifecycle::{LifecycleEvent, LifecycleRecord};
use cortex_shared::{AgentName, ErrorCode, Priority};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use Priority::{Critical, High, Low, Normal};

/// The longest wait for an event.
const WAIT: Duration = Duration::from_secs(5);

fn settings() -> DeliverySettings {
    DeliverySettings::default()
}

/// Settings for tests that wait for a redelivery: a short block, so that the consumer
/// soon comes round to its reclaim.
fn quick() -> DeliverySettings {
    DeliverySettings {
        block: Duration::from_millis(20),
        ..settings()
    }
}

/// The client of one consumer of agent `pink` on the fake; what it is told is checked
/// against the fake.
struct Client {
    redis: FakeRedis,
    name: String,
    events: mpsc::Receiver<ConsumerEvent>,
    commands: mpsc::Sender<ConsumerCommand>,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

fn start(redis: &FakeRedis, name: &str, settings: DeliverySettings) -> Client {
    start_limited(redis, name, settings, None)
}

fn start_limited(
    redis: &FakeRedis,
    name: &str,
    settings: DeliverySettings,
    limit: Option<usize>,
) -> Client {
    start_with(redis, name, settings, limit, true)
}

/// A consumer that makes no lifecycle records.
fn start_off(redis: &FakeRedis, name: &str, settings: DeliverySettings) -> Client {
    start_with(redis, name, settings, None, false)
}

fn start_with(
    redis: &FakeRedis,
    name: &str,
    settings: DeliverySettings,
    limit: Option<usize>,
    lifecycle: bool,
) -> Client {
    let mut consumer = Consumer::new(
        redis.store(name),
        AgentName::parse("pink").unwrap(),
        name.to_owned(),
        settings,
        Arc::default(),
    )
    .with_lifecycle(lifecycle);
    if let Some(n) = limit {
        consumer = consumer.with_limit(n);
    }
    let (events_tx, events) = mpsc::channel(256);
    let (commands, commands_rx) = mpsc::channel(64);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(consumer.run(events_tx, commands_rx, cancel.clone()));
    Client {
        redis: redis.clone(),
        name: name.to_owned(),
        events,
        commands,
        cancel,
        task,
    }
}

fn key_of(stream: &str, entry_id: &str) -> Key {
    super::key(stream, entry_id).expect("a task stream and an entry id")
}

fn acked(key: Key) -> ConsumerEvent {
    ConsumerEvent::Acked {
        stream: key.0.stream().to_owned(),
        entry_id: key.1.to_string(),
    }
}

fn nacked(key: Key, dead_lettered: bool) -> ConsumerEvent {
    ConsumerEvent::Nacked {
        stream: key.0.stream().to_owned(),
        entry_id: key.1.to_string(),
        dead_lettered,
    }
}

impl Client {
    /// The next event. A delivery must be pending for this consumer, with the count
    /// Redis holds (read into the pending list before it is sent; counted once); an
    /// `acked` must be acked in Redis already.
    async fn next(&mut self) -> ConsumerEvent {
        let event = tokio::time::timeout(WAIT, self.events.recv())
            .await
            .expect("an event in time")
            .expect("the consumer runs");
        match &event {
            ConsumerEvent::Delivery {
                stream,
                entry_id,
                count,
                ..
            } => {
                let key = key_of(stream, entry_id);
                assert_eq!(
                    self.redis.owner(key),
                    Some((self.name.clone(), *count)),
                    "{key:?} sent: pending for this consumer, counted as Redis counted it"
                );
            }
            ConsumerEvent::Acked { stream, entry_id } => {
                let key = key_of(stream, entry_id);
                assert_eq!(self.redis.owner(key), None, "{key:?} answered acked first");
                assert!(self
                    .redis
                    .log()
                    .iter()
                    .any(|(kind, keys)| *kind == Kind::Ack && keys.contains(&key)));
            }
            _ => {}
        }
        event
    }

    async fn ready(&mut self) {
        let event = self.next().await;
        assert!(matches!(event, ConsumerEvent::Ready { .. }), "{event:?}");
    }

    /// The next event, a delivery: its task's key and delivery count.
    async fn delivery(&mut self) -> (Key, u64) {
        match self.next().await {
            ConsumerEvent::Delivery {
                stream,
                entry_id,
                count,
                ..
            } => (key_of(stream, &entry_id), count),
            other => panic!("expected a delivery, got {other:?}"),
        }
    }

    /// Acks `key`, letting the fake take the ack.
    fn ack(&self, key: Key) {
        self.redis.allow_ack(key);
        self.send(ConsumerCommand::Ack {
            stream: key.0.stream().to_owned(),
            entry_id: key.1.to_string(),
        });
    }

    fn nack(&self, key: Key) {
        self.send(ConsumerCommand::Nack {
            stream: key.0.stream().to_owned(),
            entry_id: key.1.to_string(),
            error: "boom".into(),
        });
    }

    fn send(&self, command: ConsumerCommand) {
        self.commands.try_send(command).expect("room for a command");
    }

    /// Stops the consumer (it hands back what is in flight) and waits for it.
    async fn stop(self) {
        self.cancel.cancel();
        self.task.await.expect("the consumer stops cleanly");
    }

    /// Drops the consumer wherever it is, as a crash of the relay would.
    async fn kill(self) {
        self.task.abort();
        assert!(self.task.await.unwrap_err().is_cancelled());
    }
}

#[tokio::test]
async fn a_task_is_pending_before_it_is_sent_and_acked_only_once_the_client_acks() {
    let redis = FakeRedis::default();
    let task = redis.task(Normal, "pink");
    let mut client = start(&redis, "sent-then-acked", settings());
    client.ready().await;
    assert_eq!(client.delivery().await, (task, 1));
    // Delivered, not acked: it stays pending while the consumer reads on.
    redis.wait_for("a blocking read", FakeRedis::blocked).await;
    assert!(redis.owner(task).is_some());
    client.ack(task);
    assert_eq!(client.next().await, acked(task));
    let log = redis.log();
    let at = |kind| {
        log.iter()
            .position(|(k, keys)| *k == kind && keys.contains(&task))
    };
    assert!(at(Kind::Read).unwrap() < at(Kind::Ack).unwrap());
    client.stop().await;
    assert_eq!(redis.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn acks_and_nacks_are_answered_in_order_the_acks_before_a_nack_sent_first() {
    let redis = FakeRedis::default();
    let [a, b, c, d] = [Normal, Normal, High, Normal].map(|p| redis.task(p, "pink"));
    let mut client = start(&redis, "in-order", settings());
    client.ready().await;
    let mut delivered = Vec::new();
    for _ in 0..4 {
        delivered.push(client.delivery().await.0);
    }
    assert_eq!(delivered, [c, a, b, d], "most urgent first, then oldest");
    redis.wait_for("a blocking read", FakeRedis::blocked).await;
    let before = redis.log().len();
    // Queued together: handled as one batch.
    client.ack(a);
    client.ack(c);
    client.nack(b);
    client.ack(d);
    client.send(ConsumerCommand::Ack {
        stream: Normal.stream().to_owned(),
        entry_id: "999-0".into(),
    });
    assert_eq!(client.next().await, acked(a));
    assert_eq!(client.next().await, acked(c));
    assert_eq!(client.next().await, nacked(b, false));
    assert_eq!(client.next().await, acked(d));
    match client.next().await {
        ConsumerEvent::Failed { code, .. } => assert_eq!(code, ErrorCode::UnknownDelivery),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // The two acks before the nack in one round trip (one XACK per stream), then the
    // nack (due again at once), then the last ack; nothing for the unknown one.
    let writes: Vec<_> = redis.log()[before..]
        .iter()
        .filter(|(kind, _)| matches!(kind, Kind::Ack | Kind::Release | Kind::DeadLetter))
        .cloned()
        .collect();
    assert_eq!(
        writes,
        [
            (Kind::Ack, vec![c, a]),
            (Kind::Release, vec![b]),
            (Kind::Ack, vec![d]),
        ]
    );
    client.stop().await;
    assert_eq!(redis.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn a_nack_with_deliveries_left_is_redelivered_and_the_last_dead_letters_once() {
    let redis = FakeRedis::default();
    let task = redis.task(High, "pink");
    let mut client = start(&redis, "nacked", quick());
    client.ready().await;
    for count in 1..=2 {
        assert_eq!(client.delivery().await, (task, count));
        client.nack(task);
        assert_eq!(client.next().await, nacked(task, false));
        assert!(redis.letters().is_empty());
    }
    assert_eq!(client.delivery().await, (task, 3));
    client.nack(task);
    assert_eq!(client.next().await, nacked(task, true));
    let letters = redis.letters();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].0, task);
    assert_eq!(
        (letters[0].1.error.as_str(), letters[0].1.retry_count),
        ("boom", 3)
    );
    assert_eq!(redis.owner(task), None);
    // Dead, not delivered again: what comes next is a new task.
    let next = redis.task(High, "pink");
    assert_eq!(client.delivery().await, (next, 1));
    client.stop().await;
    assert_eq!(redis.letters().len(), 1);
    // Its ack was the letter's own, never an XACK the client did not ask for.
    assert_eq!(redis.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn a_letter_names_the_agent_and_consumer_and_every_attempt() {
    let redis = FakeRedis::default();
    let task = redis.task(High, "");
    let earlier = cortex_shared::Attempt {
        at_ms: 5,
        consumer: "other".into(),
        error: "not acked within the visibility timeout".into(),
    };
    redis.set_attempts(task, vec![earlier.clone()]);
    let settings = DeliverySettings {
        max_deliveries: 1,
        ..quick()
    };
    let mut client = start(&redis, "pink-7", settings);
    client.ready().await;
    assert_eq!(client.delivery().await, (task, 1));
    client.nack(task);
    assert_eq!(client.next().await, nacked(task, true));
    let letters = redis.letters();
    let letter = &letters[0].1;
    assert_eq!(letter.failed_agent.as_deref(), Some("pink"));
    assert_eq!(letter.failed_consumer.as_deref(), Some("pink-7"));
    assert_eq!(letter.attempts.len(), 2, "{:?}", letter.attempts);
    assert_eq!(letter.attempts[0], earlier);
    assert_eq!(
        (
            letter.attempts[1].consumer.as_str(),
            letter.attempts[1].error.as_str()
        ),
        ("pink-7", "boom")
    );
    client.stop().await;
    assert_eq!(redis.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn a_letter_is_written_when_the_attempts_cannot_be_read() {
    let redis = FakeRedis::default();
    let task = redis.task(High, "pink");
    let settings = DeliverySettings {
        max_deliveries: 1,
        ..quick()
    };
    let mut client = start(&redis, "pink-8", settings);
    client.ready().await;
    assert_eq!(client.delivery().await, (task, 1));
    redis.set_fault(Trigger::Next(Kind::Attempts), Fault::Fail);
    client.nack(task);
    assert_eq!(client.next().await, nacked(task, true));
    assert!(redis.fired());
    let letters = redis.letters();
    assert_eq!(letters.len(), 1);
    // Only the last attempt is known.
    assert_eq!(letters[0].1.attempts.len(), 1);
    assert_eq!(letters[0].1.attempts[0].error, "boom");
    client.stop().await;
    assert_eq!(redis.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn a_task_not_acked_in_time_is_delivered_again_then_dead_lettered_once() {
    let redis = FakeRedis::default();
    let task = redis.task(Low, "pink");
    let settings = DeliverySettings {
        visibility: Duration::from_millis(100),
        max_deliveries: 2,
        ..quick()
    };
    let mut client = start(&redis, "too-slow", settings);
    client.ready().await;
    assert_eq!(client.delivery().await, (task, 1));
    assert_eq!(client.delivery().await, (task, 2));
    redis
        .wait_for("the letter", |redis| !redis.letters().is_empty())
        .await;
    let letters = redis.letters();
    assert_eq!(letters[0].0, task);
    assert_eq!(letters[0].1.error, "not acked after 2 deliveries");
    assert_eq!(letters[0].1.retry_count, 2);
    assert_eq!(redis.owner(task), None);
    let next = redis.task(Low, "pink");
    assert_eq!(client.delivery().await, (next, 1));
    client.ack(next);
    assert_eq!(client.next().await, acked(next));
    client.stop().await;
    assert_eq!(redis.letters().len(), 1);
    assert_eq!(redis.violations(), Vec::<String>::new());
}

/// A malformed entry, a task for another agent (the fake may ack it), and a task for
/// pink, in that order of urgency.
fn three_entries(redis: &FakeRedis) -> (Key, Key, Key) {
    let malformed = redis.entry(Critical, &[("id", "t0"), ("payload", "{bad")]);
    let foreign = redis.task(High, "harold");
    redis.allow_ack(foreign);
    let task = redis.task(Normal, "pink");
    (malformed, foreign, task)
}

#[tokio::test]
async fn a_malformed_entry_is_dead_lettered_and_one_for_another_agent_acked_unsent() {
    let redis = FakeRedis::default();
    let (malformed, foreign, task) = three_entries(&redis);
    let mut client = start(&redis, "picky", settings());
    client.ready().await;
    assert_eq!(client.delivery().await, (task, 1));
    assert_eq!(redis.owner(malformed), None);
    assert_eq!(redis.owner(foreign), None);
    let letters = redis.letters();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].0, malformed);
    assert_eq!(letters[0].1.original_payload, "{bad");
    client.stop().await;
    assert_eq!(redis.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn an_ack_redis_did_not_take_is_answered_redis_unavailable_and_may_come_again() {
    let redis = FakeRedis::default();
    let task = redis.task(Low, "pink");
    let mut client = start(&redis, "ack-failed", settings());
    client.ready().await;
    assert_eq!(client.delivery().await, (task, 1));
    redis.set_fault(Trigger::Next(Kind::Ack), Fault::Fail);
    client.ack(task);
    match client.next().await {
        ConsumerEvent::Failed { code, .. } => assert_eq!(code, ErrorCode::RedisUnavailable),
        other => panic!("expected redis_unavailable, got {other:?}"),
    }
    assert!(redis.owner(task).is_some(), "still pending");
    // Still in flight after the reconnect: not sent again, and its ack is taken.
    client.ack(task);
    assert_eq!(client.next().await, acked(task));
    client.stop().await;
    assert_eq!(redis.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn a_read_whose_reply_was_lost_is_delivered_after_the_reconnect_counted_once() {
    let redis = FakeRedis::default();
    let task = redis.task(Critical, "pink");
    redis.set_fault(Trigger::Next(Kind::Read), Fault::LoseReply);
    let mut client = start(&redis, "lost-reply", settings());
    client.ready().await;
    // Read (and counted) before the connection went; taken back without a count.
    assert_eq!(client.delivery().await, (task, 1));
    assert!(redis.fired());
    assert!(redis
        .log()
        .iter()
        .any(|(kind, keys)| *kind == Kind::TakeBack && keys == &[task]));
    client.ack(task);
    assert_eq!(client.next().await, acked(task));
    client.stop().await;
}

#[tokio::test]
async fn a_client_that_goes_hands_its_tasks_back_due_at_once() {
    let redis = FakeRedis::default();
    let task = redis.task(Normal, "pink");
    let mut going = start(&redis, "going", settings());
    going.ready().await;
    assert_eq!(going.delivery().await, (task, 1));
    going.stop().await;
    // Still pending, no delivery counted, idle for a whole visibility timeout.
    assert_eq!(redis.owner(task), Some(("going".to_owned(), 1)));
    assert!(redis.idle(task).unwrap() >= settings().visibility);
    let mut next = start(&redis, "taking-over", settings());
    next.ready().await;
    assert_eq!(next.delivery().await, (task, 2));
    next.ack(task);
    assert_eq!(next.next().await, acked(task));
    next.stop().await;
}

#[tokio::test]
async fn a_consumer_that_holds_nothing_leaves_its_group_when_it_ends() {
    let redis = FakeRedis::default();
    let task = redis.task(High, "pink");
    let mut client = start(&redis, "short", settings());
    client.ready().await;
    assert_eq!(client.delivery().await, (task, 1));
    client.ack(task);
    assert_eq!(client.next().await, acked(task));
    assert_eq!(redis.left(), Vec::<String>::new(), "not while it runs");
    client.stop().await;
    assert_eq!(redis.left(), ["short"]);
    assert_eq!(
        redis.log().last().map(|(kind, _)| *kind),
        Some(Kind::Leave),
        "the last thing it does"
    );
    // One whose client just goes (no task ever) leaves too.
    let mut idle = start(&redis, "idle", settings());
    idle.ready().await;
    drop(idle.commands);
    drop(idle.events);
    idle.task.await.expect("the consumer stops cleanly");
    assert_eq!(redis.left(), ["short", "idle"]);
}

#[tokio::test]
async fn a_consumer_that_holds_a_task_stays_in_its_group_when_it_ends() {
    let redis = FakeRedis::default();
    let task = redis.task(High, "pink");
    let mut client = start(&redis, "holding", settings());
    client.ready().await;
    assert_eq!(client.delivery().await, (task, 1));
    client.stop().await;
    assert_eq!(redis.owner(task), Some(("holding".to_owned(), 1)));
    assert_eq!(redis.left(), Vec::<String>::new());
    // Nor does one with nothing in flight that Redis still holds a task for (nacked,
    // due again): Redis is asked, not the consumer's memory.
    let redis = FakeRedis::default();
    let task = redis.task(High, "pink");
    let mut client = start(&redis, "nacking", settings());
    client.ready().await;
    let (got, _) = client.delivery().await;
    assert_eq!(got, task);
    client.nack(got);
    assert_eq!(client.next().await, nacked(got, false));
    client.stop().await;
    assert_eq!(redis.owner(got).map(|o| o.0), Some("nacking".to_owned()));
    assert_eq!(redis.left(), Vec::<String>::new());
    assert!(redis.log().iter().any(|(kind, _)| *kind == Kind::Leave));

    let redis = FakeRedis::default();
    let settings = DeliverySettings {
        prefetch: 1,
        ..settings()
    };
    let [a, b] = [Critical, Critical].map(|p| redis.task(p, "pink"));
    let mut client = start(&redis, "full", settings);
    client.ready().await;
    assert_eq!(client.delivery().await, (a, 1));
    client.ack(a);
    assert_eq!(client.next().await, acked(a));
    assert_eq!(client.delivery().await, (b, 1));
    client.kill().await;
    // A consumer killed mid-way (a crash) cannot leave; its successor of the same
    // name finishes the task and then does.
    assert_eq!(redis.left(), Vec::<String>::new());
    let mut next = start(&redis, "full", settings);
    next.ready().await;
    assert_eq!(next.delivery().await.0, b);
    next.ack(b);
    assert_eq!(next.next().await, acked(b));
    next.stop().await;
    assert_eq!(redis.left(), ["full"]);
}

#[tokio::test]
async fn a_consumer_that_ends_holding_leaves_once_another_has_taken_its_tasks() {
    let redis = FakeRedis::default();
    let task = redis.task(High, "pink");
    let mut holder = start(&redis, "holder", quick());
    holder.ready().await;
    assert_eq!(holder.delivery().await, (task, 1));
    holder.stop().await;
    assert_eq!(redis.left(), Vec::<String>::new(), "it holds the task");
    let mut taker = start(&redis, "taker", quick());
    taker.ready().await;
    assert_eq!(taker.delivery().await, (task, 2));
    taker.ack(task);
    assert_eq!(taker.next().await, acked(task));
    // The holder, gone, tries again once a second: now it holds nothing.
    let left = tokio::time::timeout(Duration::from_secs(5), async {
        while !redis.left().contains(&"holder".to_owned()) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(left.is_ok(), "the holder did not leave: {:?}", redis.left());
    taker.stop().await;
    assert_eq!(redis.left(), ["holder", "taker"]);
}

#[tokio::test]
async fn a_burst_reaching_a_blocked_read_goes_out_most_urgent_first() {
    let redis = FakeRedis::default();
    let settings = DeliverySettings {
        prefetch: 4,
        ..settings()
    };
    let mut client = start(&redis, "bursty", settings);
    client.ready().await;
    redis.wait_for("a blocking read", FakeRedis::blocked).await;
    // The read is woken by the low stream, which Redis then serves alone.
    let mut burst = vec![(Low, "pink"); 4];
    burst.extend([(Critical, "pink"); 4]);
    redis.burst(&burst);
    let mut order = Vec::new();
    while order.len() < 8 {
        if let ConsumerEvent::Delivery {
            stream, entry_id, ..
        } = client.next().await
        {
            let key = key_of(stream, &entry_id);
            order.push(key.0);
            client.ack(key);
        }
    }
    assert_eq!(
        order,
        [Critical, Critical, Critical, Critical, Low, Low, Low, Low]
    );
    client.stop().await;
}

#[tokio::test]
async fn a_consumer_with_a_limit_takes_no_more_tasks_than_that() {
    let redis = FakeRedis::default();
    let [a, b] = [High, High].map(|p| redis.task(p, "pink"));
    let mut client = start_limited(&redis, "limited", settings(), Some(1));
    client.ready().await;
    assert_eq!(client.delivery().await, (a, 1));
    client.ack(a);
    assert_eq!(client.next().await, acked(a));
    assert!(!redis.was_read(b), "not taken under its name");
    client.stop().await;
}

/// [`three_entries`] with `fault` on one command, the client acking pink's task when
/// it is sent (again when told Redis did not take the ack). Checks that the task is
/// acked once the client acked it and not before, the entry for another agent acked,
/// the malformed one dead-lettered once. Returns the commands called until `acked`.
async fn faulted_run(name: &str, fault: Option<(Trigger, Fault)>) -> usize {
    let redis = FakeRedis::default();
    let (malformed, foreign, task) = three_entries(&redis);
    if let Some((trigger, fault)) = fault {
        redis.set_fault(trigger, fault);
    }
    let mut client = start(&redis, name, settings());
    let mut sent = false;
    loop {
        match client.next().await {
            ConsumerEvent::Ready { .. } => {}
            ConsumerEvent::Delivery {
                stream, entry_id, ..
            } => {
                assert_eq!(key_of(stream, &entry_id), task, "{fault:?}");
                sent = true;
                client.ack(task);
            }
            ConsumerEvent::Acked { stream, entry_id } => {
                assert_eq!(key_of(&stream, &entry_id), task, "{fault:?}");
                break;
            }
            ConsumerEvent::Failed {
                code: ErrorCode::RedisUnavailable,
                ..
            } if sent => client.ack(task),
            ConsumerEvent::Failed {
                code: ErrorCode::RedisUnavailable,
                ..
            } => {}
            other => panic!("{fault:?}: unexpected {other:?}"),
        }
    }
    let calls = redis.calls();
    redis
        .wait_for("the other two entries done", |redis| {
            redis.owner(malformed).is_none()
                && redis.owner(foreign).is_none()
                && redis.was_read(foreign)
                && redis.letters().len() == 1
        })
        .await;
    client.stop().await;
    assert_eq!(redis.violations(), Vec::<String>::new(), "{fault:?}");
    assert_eq!(redis.letters().len(), 1, "{fault:?}");
    records_claim_only_what_happened(&redis, &format!("{fault:?}"), false);
    if fault.is_some() {
        assert!(redis.fired(), "{fault:?}: the fault came before the ack");
    }
    calls
}

#[tokio::test]
async fn a_fault_at_any_step_loses_no_task_and_acks_none_the_client_did_not_ack() {
    let calls = faulted_run("faulted", None).await;
    assert!(calls > 10, "{calls}");
    for fault in [Fault::Fail, Fault::LoseReply] {
        for n in 0..calls {
            faulted_run("faulted", Some((Trigger::Call(n), fault))).await;
        }
    }
}

/// [`three_entries`], the consumer hanging on its `n`th command and then dropped (a
/// crash), the client acking what it is sent meanwhile. Then another consumer of the
/// same name (the relay restarted) finishes: pink's task delivered and acked unless
/// it was acked already, and only if the client had acked it.
async fn dropped_run(n: usize) {
    let redis = FakeRedis::default();
    let (malformed, foreign, task) = three_entries(&redis);
    redis.set_fault(Trigger::Call(n), Fault::Hang);
    let mut first = start(&redis, "dropped", settings());
    let mut client_acked = false;
    loop {
        tokio::select! {
            event = first.next() => {
                if let ConsumerEvent::Delivery { .. } = event {
                    first.ack(task);
                    client_acked = true;
                }
            }
            () = redis.wait_for("the hang", FakeRedis::fired) => break,
        }
    }
    first.kill().await;
    let done = redis.was_read(task) && redis.owner(task).is_none();
    assert!(!done || client_acked, "call {n}: acked, not by the client");
    assert!(done || redis.owner(task).is_some() || !redis.was_read(task));
    let mut second = start(&redis, "dropped", settings());
    second.ready().await;
    if !done {
        assert_eq!(second.delivery().await.0, task, "call {n}");
        second.ack(task);
        assert_eq!(second.next().await, acked(task), "call {n}");
    }
    redis
        .wait_for("the other two entries done", |redis| {
            redis.owner(malformed).is_none()
                && redis.owner(foreign).is_none()
                && redis.was_read(foreign)
                && redis.letters().len() == 1
        })
        .await;
    second.stop().await;
    assert_eq!(redis.violations(), Vec::<String>::new(), "call {n}");
    assert_eq!(redis.letters().len(), 1, "call {n}");
    records_claim_only_what_happened(&redis, &format!("call {n}"), true);
}

#[tokio::test]
async fn a_consumer_dropped_at_any_step_leaves_its_task_pending_for_the_next() {
    let calls = faulted_run("counted", None).await;
    for n in 0..calls {
        dropped_run(n).await;
    }
}

#[tokio::test]
async fn an_entry_deleted_while_pending_is_acked_on_recovery_not_delivered() {
    let redis = FakeRedis::default();
    let task = redis.task(High, "pink");
    let mut first = start(&redis, "deleted", settings());
    first.ready().await;
    assert_eq!(first.delivery().await, (task, 1));
    first.kill().await;
    redis.delete(task);
    // Nothing left to deliver: acking it is right.
    redis.allow_ack(task);
    let mut second = start(&redis, "deleted", settings());
    second.ready().await;
    redis
        .wait_for("the deleted entry acked", |redis| {
            redis.owner(task).is_none()
        })
        .await;
    let next = redis.task(High, "pink");
    assert_eq!(second.delivery().await, (next, 1));
    second.stop().await;
    assert_eq!(redis.violations(), Vec::<String>::new());
}

/// The key a record is about.
fn key_of_record(record: &LifecycleRecord) -> Key {
    key_of(&record.stream, &record.entry_id)
}

/// The records of `event`, by key.
fn of(records: &[LifecycleRecord], event: LifecycleEvent) -> Vec<Key> {
    records
        .iter()
        .filter(|r| r.event == event)
        .map(key_of_record)
        .collect()
}

/// Every record written tells something that happened: an `acked` only for an entry
/// `XACK`ed, and no `delivered` of it after that; a `delivered` only of an entry the
/// group read, once per delivery count (but after a crash: a task in flight when the
/// relay died, taken back under the same name, is delivered again with the count Redis
/// kept, see `recover.rs`); a `dead_lettered` only with a letter. (A record may be
/// missing: one whose write failed is not written again, as the write may have taken
/// effect with its reply lost.)
fn records_claim_only_what_happened(redis: &FakeRedis, what: &str, crashed: bool) {
    let records = redis.records();
    let log = redis.log();
    let mut seen = std::collections::HashSet::new();
    for (i, record) in records.iter().enumerate() {
        let key = key_of_record(record);
        assert_eq!(record.agent.as_deref(), Some("pink"), "{what}");
        match record.event {
            LifecycleEvent::Acked => {
                assert!(
                    log.iter()
                        .any(|(kind, keys)| *kind == Kind::Ack && keys.contains(&key)),
                    "{what}: acked without its XACK: {record:?}"
                );
                assert!(
                    !records[i..]
                        .iter()
                        .any(|r| r.event == LifecycleEvent::Delivered && key_of_record(r) == key),
                    "{what}: delivered after acked: {records:?}"
                );
            }
            LifecycleEvent::Delivered => {
                assert!(redis.was_read(key), "{what}: {record:?}");
                let delivery = record.detail["delivery"].as_u64().unwrap();
                assert!(
                    seen.insert((key, delivery)) || crashed,
                    "{what}: delivery {delivery} of {key:?} recorded twice: {records:?}"
                );
            }
            LifecycleEvent::DeadLettered => {
                assert!(
                    redis.letters().iter().any(|(k, _)| *k == key),
                    "{what}: {record:?}"
                );
                assert!(record.detail["dlq_id"].is_string(), "{what}: {record:?}");
            }
            _ => {}
        }
    }
}

/// A task for pink in the trace `c-1`.
fn traced_task(redis: &FakeRedis, priority: Priority) -> Key {
    redis.entry(
        priority,
        &[
            ("id", "traced-1"),
            ("from", "harold"),
            ("to", "pink"),
            ("priority", priority.as_str()),
            ("type", "coding"),
            ("payload", "{}"),
            ("created", "1704556800"),
            ("correlation_id", "c-1"),
        ],
    )
}

#[tokio::test]
async fn each_record_is_written_with_the_command_it_records() {
    let redis = FakeRedis::default();
    let task = traced_task(&redis, High);
    let mut client = start(&redis, "recorded", quick());
    client.ready().await;
    assert_eq!(client.delivery().await, (task, 1));
    // Written with the next write the consumer sends anyway (here, with nothing to
    // ack, the alive key's refresh, within a second); the trace learns of the task at
    // its first delivery.
    redis
        .wait_for("the delivered record", |r| !r.records().is_empty())
        .await;
    assert!(redis.log().iter().all(|(kind, _)| *kind != Kind::Records));
    let first = &redis.records()[0];
    assert_eq!(first.event, LifecycleEvent::Delivered);
    assert_eq!(key_of_record(first), task);
    assert_eq!(first.task_id, "traced-1");
    assert_eq!(first.consumer.as_deref(), Some("recorded"));
    assert_eq!(first.detail["delivery"], 1);
    assert_eq!(redis.traces(), [("c-1".to_owned(), "traced-1".to_owned())]);
    // The nack: its record with the hand-back, in one command.
    client.nack(task);
    assert_eq!(client.next().await, nacked(task, false));
    let records = redis.records();
    assert_eq!(records[1].event, LifecycleEvent::Nacked);
    assert_eq!(records[1].detail["error"], "boom");
    let release = redis
        .log()
        .iter()
        .position(|(kind, keys)| *kind == Kind::Release && keys == &[task]);
    assert!(release.is_some());
    // Redelivered (its own, reclaimed by itself: no `reclaimed`), then acked.
    assert_eq!(client.delivery().await, (task, 2));
    client.ack(task);
    assert_eq!(client.next().await, acked(task));
    let records = redis.records();
    let events: Vec<_> = records.iter().map(|r| r.event).collect();
    assert_eq!(
        events,
        [
            LifecycleEvent::Delivered,
            LifecycleEvent::Nacked,
            LifecycleEvent::Delivered,
            LifecycleEvent::Acked
        ]
    );
    assert_eq!(records[2].detail["delivery"], 2);
    assert!(records[3].detail["ms"].is_u64(), "{:?}", records[3]);
    // Only the first delivery adds it to its trace.
    assert_eq!(redis.traces().len(), 1);
    client.stop().await;
    records_claim_only_what_happened(&redis, "recorded", false);
}

#[tokio::test]
async fn an_ack_redis_did_not_take_writes_no_acked_and_one_whose_reply_was_lost_does() {
    for fault in [Fault::Fail, Fault::LoseReply] {
        let redis = FakeRedis::default();
        let task = redis.task(Low, "pink");
        let mut client = start(&redis, "ack-fault", settings());
        client.ready().await;
        assert_eq!(client.delivery().await, (task, 1));
        redis
            .wait_for("the delivered record", |r| !r.records().is_empty())
            .await;
        redis.set_fault(Trigger::Next(Kind::Ack), fault);
        client.ack(task);
        match client.next().await {
            ConsumerEvent::Failed { code, .. } => assert_eq!(code, ErrorCode::RedisUnavailable),
            other => panic!("expected redis_unavailable, got {other:?}"),
        }
        let acked_records = of(&redis.records(), LifecycleEvent::Acked);
        match fault {
            // Not acked in Redis: no record says it was.
            Fault::Fail => {
                assert!(redis.owner(task).is_some());
                assert!(acked_records.is_empty(), "{:?}", redis.records());
            }
            // Acked, its record with it, though the consumer was not told.
            _ => {
                assert_eq!(redis.owner(task), None);
                assert_eq!(acked_records, [task]);
            }
        }
        if fault == Fault::Fail {
            client.ack(task);
            assert_eq!(client.next().await, acked(task));
            assert_eq!(of(&redis.records(), LifecycleEvent::Acked), [task]);
        }
        client.stop().await;
        records_claim_only_what_happened(&redis, &format!("{fault:?}"), false);
    }
}

#[tokio::test]
async fn a_task_claimed_from_another_consumer_is_recorded_reclaimed_from_it() {
    let redis = FakeRedis::default();
    let task = redis.task(Normal, "pink");
    let settings = DeliverySettings {
        visibility: Duration::from_millis(300),
        ..quick()
    };
    let mut first = start(&redis, "gone-quiet", settings);
    first.ready().await;
    assert_eq!(first.delivery().await, (task, 1));
    // Its relay died: nothing handed back, the task comes back after the timeout; the
    // delivery's record, not yet written, is lost with it (nothing claims otherwise).
    first.kill().await;
    let mut second = start(&redis, "taking-over", settings);
    second.ready().await;
    assert_eq!(second.delivery().await, (task, 2));
    second.ack(task);
    assert_eq!(second.next().await, acked(task));
    let records = redis.records();
    let events: Vec<_> = records
        .iter()
        .map(|r| (r.event, r.consumer.clone().unwrap()))
        .collect();
    assert_eq!(
        events,
        [
            (LifecycleEvent::Reclaimed, "taking-over".to_owned()),
            (LifecycleEvent::Delivered, "taking-over".to_owned()),
            (LifecycleEvent::Acked, "taking-over".to_owned()),
        ]
    );
    assert_eq!(records[0].detail["from"], "gone-quiet");
    assert_eq!(records[0].detail["delivery"], 2);
    second.stop().await;
    records_claim_only_what_happened(&redis, "reclaimed", false);
}

#[tokio::test]
async fn a_dead_letter_is_recorded_with_its_letter_and_no_nacked() {
    let redis = FakeRedis::default();
    let task = redis.task(High, "pink");
    let settings = DeliverySettings {
        max_deliveries: 1,
        ..quick()
    };
    let mut client = start(&redis, "last-try", settings);
    client.ready().await;
    assert_eq!(client.delivery().await, (task, 1));
    client.nack(task);
    assert_eq!(client.next().await, nacked(task, true));
    let records = redis.records();
    let events: Vec<_> = records.iter().map(|r| r.event).collect();
    assert_eq!(
        events,
        [LifecycleEvent::Delivered, LifecycleEvent::DeadLettered]
    );
    assert_eq!(records[1].detail["error"], "boom");
    assert_eq!(records[1].detail["dlq_id"], "1-0");
    // A malformed entry with an id gets its record too; one without an id none.
    redis.entry(Critical, &[("id", "broken-1"), ("payload", "{bad")]);
    redis.entry(Critical, &[("payload", "{bad")]);
    redis
        .wait_for("both letters", |r| r.letters().len() == 3)
        .await;
    let dead = redis
        .records()
        .into_iter()
        .filter(|r| r.event == LifecycleEvent::DeadLettered)
        .map(|r| r.task_id)
        .collect::<Vec<_>>();
    assert_eq!(dead, [format!("t{}", task.1.ms), "broken-1".to_owned()]);
    client.stop().await;
    records_claim_only_what_happened(&redis, "dead", false);
}

#[tokio::test]
async fn with_the_record_off_nothing_more_is_sent() {
    let redis = FakeRedis::default();
    let task = traced_task(&redis, High);
    let settings = DeliverySettings {
        max_deliveries: 2,
        ..quick()
    };
    let mut client = start_off(&redis, "unrecorded", settings);
    client.ready().await;
    assert_eq!(client.delivery().await, (task, 1));
    client.nack(task);
    assert_eq!(client.next().await, nacked(task, false));
    assert_eq!(client.delivery().await, (task, 2));
    client.nack(task);
    assert_eq!(client.next().await, nacked(task, true));
    let next = redis.task(High, "pink");
    assert_eq!(client.delivery().await, (next, 1));
    client.ack(next);
    assert_eq!(client.next().await, acked(next));
    client.stop().await;
    assert!(redis.records().is_empty());
    assert!(redis.traces().is_empty());
    assert!(!redis.log().iter().any(|(kind, _)| *kind == Kind::Records));
}
