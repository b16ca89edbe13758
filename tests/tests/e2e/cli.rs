//! The operator CLI end to end: the real `cortex-relay` binary run as a subprocess
//! (each run with a timeout) against a real `redis-server`, and against a real relay.
//! Nothing sleeps: a `tail` is waited on for the line it prints once it is reading.

use cortex_e2e::redis::{xadd, RedisServer};
use cortex_e2e::relay::{relay_bin, Relay};
use cortex_shared::{DeadLetter, Heartbeat, TaskMessage, DLQ_STREAM, HEARTBEAT_STREAM};
use redis::aio::MultiplexedConnection;
use redis::streams::StreamRangeReply;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Longest any one CLI run may take.
const TIMEOUT: Duration = Duration::from_secs(20);

/// A finished CLI run.
#[derive(Debug)]
struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Outcome {
    /// Asserts exit 0 and returns stdout.
    fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "expected success: {self:#?}");
        &self.stdout
    }

    /// stdout's lines as JSON objects.
    fn json_lines(&self) -> Vec<Value> {
        self.ok()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}")))
            .collect()
    }

    /// Asserts exit `code`, and that stderr says each of `needles`.
    fn fails(&self, code: i32, needles: &[&str]) {
        assert_eq!(self.code, code, "exit code: {self:#?}");
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "stderr lacks {needle:?}: {self:#?}"
            );
        }
    }
}

/// The binary with a clean environment (no CORTEX_* from the caller).
fn command(args: &[&str]) -> Command {
    let mut command = Command::new(relay_bin());
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Runs `cortex-relay ARGS` to completion (killed and failed after [`TIMEOUT`]).
fn cli(args: &[&str]) -> Outcome {
    let child = command(args).spawn().expect("spawn cortex-relay");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(TIMEOUT) {
        Ok(output) => {
            let output = output.expect("wait for cortex-relay");
            let outcome = Outcome {
                code: output.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            };
            eprintln!("$ cortex-relay {}\n{outcome:#?}", args.join(" "));
            outcome
        }
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            let output = rx.recv().ok().and_then(Result::ok);
            panic!(
                "cortex-relay {args:?} did not finish within {TIMEOUT:?}; stdout {:?}, \
                 stderr {:?}",
                output.as_ref().map(|o| String::from_utf8_lossy(&o.stdout)),
                output.as_ref().map(|o| String::from_utf8_lossy(&o.stderr)),
            );
        }
    }
}

/// A line from a running CLI.
#[derive(Debug)]
enum Line {
    Out(String),
    Err(String),
}

/// A CLI still running (`tail`), killed on drop.
struct Running {
    child: Child,
    lines: mpsc::Receiver<Line>,
    stdout: Vec<String>,
    stderr: Vec<String>,
}

impl Running {
    fn spawn(args: &[&str]) -> Self {
        let mut child = command(args).spawn().expect("spawn cortex-relay");
        let (tx, lines) = mpsc::channel();
        let forward = |pipe: Box<dyn Read + Send>, tx: mpsc::Sender<Line>, out: bool| {
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    eprintln!("[cli {}] {line}", if out { "out" } else { "err" });
                    let _ = tx.send(if out {
                        Line::Out(line)
                    } else {
                        Line::Err(line)
                    });
                }
            });
        };
        forward(Box::new(child.stdout.take().unwrap()), tx.clone(), true);
        forward(Box::new(child.stderr.take().unwrap()), tx, false);
        Self {
            child,
            lines,
            stdout: Vec::new(),
            stderr: Vec::new(),
        }
    }

    /// Waits for a stderr line containing `needle` (e.g. "watching pink").
    fn wait_for_stderr(&mut self, needle: &str) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(Line::Err(line)) => {
                    let found = line.contains(needle);
                    self.stderr.push(line);
                    if found {
                        return;
                    }
                }
                Ok(Line::Out(line)) => self.stdout.push(line),
                Err(e) => panic!(
                    "no stderr line with {needle:?} ({e:?}); stdout {:?}, stderr {:?}",
                    self.stdout, self.stderr
                ),
            }
        }
    }

    /// Waits for the process to exit (both pipes closed); its outcome.
    fn finish(mut self) -> Outcome {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(Line::Out(line)) => self.stdout.push(line),
                Ok(Line::Err(line)) => self.stderr.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                    "cortex-relay did not exit within {TIMEOUT:?}; stdout {:?}, stderr {:?}",
                    self.stdout, self.stderr
                ),
            }
        }
        let status = self.child.wait().expect("wait");
        Outcome {
            code: status.code().unwrap_or(-1),
            stdout: self.stdout.join("\n"),
            stderr: self.stderr.join("\n"),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every entry of `stream`, as (id, fields).
async fn entries(
    conn: &mut MultiplexedConnection,
    stream: &str,
) -> Vec<(String, Vec<(String, String)>)> {
    let reply: StreamRangeReply = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query_async(conn)
        .await
        .unwrap();
    reply
        .ids
        .into_iter()
        .map(|entry| {
            let mut fields: Vec<(String, String)> = entry
                .map
                .iter()
                .map(|(k, v)| (k.clone(), redis::from_redis_value_ref(v).unwrap()))
                .collect();
            fields.sort();
            (entry.id, fields)
        })
        .collect()
}

fn pairs(fields: &[(String, String)]) -> impl Iterator<Item = (&str, &str)> {
    fields.iter().map(|(k, v)| (k.as_str(), v.as_str()))
}

/// The seed's dead letter for task `id` (as the original agents' `SendToDeadLetter` writes it).
fn seed_letter(id: &str, to: &str, error: &str) -> Vec<(&'static str, String)> {
    vec![
        ("original_id", id.to_owned()),
        ("original_from", "harold".to_owned()),
        ("original_to", to.to_owned()),
        ("original_priority", "high".to_owned()),
        ("original_type", "coding".to_owned()),
        ("original_payload", r#"{"test":"data"}"#.to_owned()),
        ("original_created", "1704556800".to_owned()),
        ("error", error.to_owned()),
        ("retry_count", "3".to_owned()),
        ("dead_at", "1704556900".to_owned()),
    ]
}

async fn add_letter(conn: &mut MultiplexedConnection, fields: &[(&'static str, String)]) -> String {
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    xadd(conn, DLQ_STREAM, &fields).await
}

async fn pending(conn: &mut MultiplexedConnection, stream: &str, group: &str) -> i64 {
    let summary: redis::Value = redis::cmd("XPENDING")
        .arg(stream)
        .arg(group)
        .query_async(conn)
        .await
        .unwrap();
    match summary {
        redis::Value::Array(items) => match items.first() {
            Some(redis::Value::Int(n)) => *n,
            _ => 0,
        },
        _ => 0,
    }
}

#[tokio::test]
async fn publish_then_replay_shows_it_for_people_and_for_scripts() {
    let redis = RedisServer::start();
    let url = redis.url();
    let out = cli(&[
        "publish",
        "--redis-url",
        &url,
        "--from",
        "harold",
        "--to",
        "pink",
        "--priority",
        "high",
        "--type",
        "coding",
        "--payload",
        r#"{"a":1}"#,
    ]);
    // task <uuid>  entry <id>  stream cortex:tasks:high
    let words: Vec<&str> = out.ok().split_whitespace().collect();
    assert_eq!(
        (words[0], words[2], words[4], words[5]),
        ("task", "entry", "stream", "cortex:tasks:high"),
        "{words:?}"
    );
    let (task_id, entry_id) = (words[1].to_owned(), words[3].to_owned());

    let published = cli(&[
        "publish",
        "--redis-url",
        &url,
        "--from",
        "harold",
        "--to",
        "*",
        "--type",
        "deploy",
        "--id",
        "deploy-7",
        "--json",
    ])
    .json_lines();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0]["task_id"], "deploy-7");
    assert_eq!(published[0]["stream"], "cortex:tasks:normal");
    assert_eq!(published[0]["task"]["to"], "");

    // Written in the README's Redis layout, with its fields.
    let mut conn = redis.connection().await;
    let high = entries(&mut conn, "cortex:tasks:high").await;
    assert_eq!(high.len(), 1);
    assert_eq!(high[0].0, entry_id);
    let names: Vec<&str> = high[0].1.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        ["created", "from", "id", "payload", "priority", "to", "type"]
    );
    let task = TaskMessage::from_fields(pairs(&high[0].1)).unwrap();
    assert_eq!(
        (
            task.id.as_str(),
            task.from.as_str(),
            task.to.as_str(),
            task.task_type.as_str()
        ),
        (task_id.as_str(), "harold", "pink", "coding")
    );
    assert_eq!(task.payload["a"], 1);

    // Replay, for people: one line with the entry, the route, the type, the payload.
    let lines = cli(&["replay", "high", "--redis-url", &url]);
    let line = lines.ok().trim_end();
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.starts_with(&entry_id), "{line}");
    for part in ["high", "harold -> pink", "coding", &task_id, r#"{"a":1}"#] {
        assert!(line.contains(part), "{line} lacks {part}");
    }
    // And for scripts: one JSON object per entry.
    let json = cli(&["replay", "cortex:tasks:high", "--json", "--redis-url", &url]).json_lines();
    assert_eq!(json.len(), 1);
    assert_eq!(json[0]["kind"], "task");
    assert_eq!(json[0]["stream"], "cortex:tasks:high");
    assert_eq!(json[0]["entry_id"], entry_id.as_str());
    assert_eq!(json[0]["data"]["id"], task_id.as_str());
    assert_eq!(json[0]["data"]["payload"]["a"], 1);
    let normal = cli(&["replay", "normal", "--json", "--redis-url", &url]).json_lines();
    assert_eq!(normal[0]["data"]["id"], "deploy-7");
}

#[tokio::test]
async fn replay_takes_ranges_and_shows_undecodable_entries_raw() {
    let redis = RedisServer::start();
    let url = redis.url();
    let mut conn = redis.connection().await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let payload = format!(r#"{{"n":{n}}}"#);
        let id = format!("t{n}");
        ids.push(
            xadd(
                &mut conn,
                "cortex:tasks:low",
                &[
                    ("id", &id),
                    ("from", "harold"),
                    ("to", "pink"),
                    ("priority", "low"),
                    ("type", "review"),
                    ("payload", &payload),
                    ("created", "1704556800"),
                ],
            )
            .await,
        );
    }
    let broken = xadd(
        &mut conn,
        "cortex:tasks:low",
        &[
            ("id", "bad"),
            ("from", "harold"),
            ("to", "pink"),
            ("priority", "low"),
            ("type", "review"),
            ("payload", "{not json"),
            ("created", "1704556800"),
        ],
    )
    .await;
    let task_ids = |out: &Outcome| -> Vec<String> {
        out.json_lines()
            .iter()
            .map(|v| v["data"]["id"].as_str().unwrap_or("?").to_owned())
            .collect()
    };

    let all = cli(&["replay", "low", "--json", "--redis-url", &url]);
    assert_eq!(task_ids(&all), ["t0", "t1", "t2", "t3", "t4", "bad"]);
    let raw = all.json_lines().pop().unwrap();
    assert_eq!(raw["kind"], "raw");
    assert_eq!(raw["entry_id"], broken.as_str());
    assert_eq!(raw["data"]["payload"], "{not json");
    assert!(
        raw["error"]
            .as_str()
            .unwrap()
            .starts_with("field `payload`: not valid JSON"),
        "{raw}"
    );

    let count = cli(&[
        "replay",
        "low",
        "--json",
        "--count",
        "2",
        "--start",
        &ids[1],
        "--redis-url",
        &url,
    ]);
    assert_eq!(task_ids(&count), ["t1", "t2"]);
    let last = cli(&[
        "replay",
        "low",
        "--json",
        "--last",
        "2",
        "--end",
        &ids[3],
        "--redis-url",
        &url,
    ]);
    assert_eq!(task_ids(&last), ["t2", "t3"]);
    let exclusive = format!("({}", ids[3]);
    let after = cli(&[
        "replay",
        "low",
        "--json",
        "--start",
        &exclusive,
        "--end",
        &ids[4],
        "--redis-url",
        &url,
    ]);
    assert_eq!(task_ids(&after), ["t4"]);

    let human = cli(&["replay", "low", "--last", "1", "--redis-url", &url]);
    assert!(
        human
            .ok()
            .contains("undecodable (field `payload`: not valid JSON"),
        "{human:?}"
    );
    let empty = cli(&["replay", "critical", "--redis-url", &url]);
    assert_eq!(empty.ok(), "");
    assert!(empty.stderr.contains("no entries"), "{empty:?}");
}

#[tokio::test]
async fn heartbeat_lands_in_the_heartbeat_stream_with_the_seed_fields() {
    let redis = RedisServer::start();
    let url = redis.url();
    let out = cli(&[
        "heartbeat",
        "pink",
        "--status",
        r#"{"state":"idle","load":0.5}"#,
        "--redis-url",
        &url,
    ]);
    assert!(out.ok().starts_with("heartbeat pink  entry "), "{out:?}");
    let json = cli(&["heartbeat", "harold", "--json", "--redis-url", &url]).json_lines();
    assert_eq!(json[0]["agent"], "harold");
    assert_eq!(json[0]["stream"], HEARTBEAT_STREAM);

    let mut conn = redis.connection().await;
    let beats = entries(&mut conn, HEARTBEAT_STREAM).await;
    assert_eq!(beats.len(), 2);
    let names: Vec<&str> = beats[0].1.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["agent", "status", "time"]);
    let pink = Heartbeat::from_fields(pairs(&beats[0].1)).unwrap();
    assert_eq!(pink.agent, "pink");
    assert_eq!(pink.status["state"], "idle");
    assert!(pink.time > 1_700_000_000);
    let harold = Heartbeat::from_fields(pairs(&beats[1].1)).unwrap();
    assert!(harold.status.is_empty());
    assert_eq!(json[0]["entry_id"], beats[1].0.as_str());
}

#[tokio::test]
async fn tail_prints_the_agents_tasks_published_after_it_started() {
    let redis = RedisServer::start();
    let url = redis.url();
    let publish = |to: &str, id: &str| {
        cli(&[
            "publish",
            "--redis-url",
            &url,
            "--from",
            "harold",
            "--to",
            to,
            "--type",
            "coding",
            "--id",
            id,
        ])
        .ok();
    };
    publish("pink", "before"); // already there: not shown

    let mut tail = Running::spawn(&["tail", "pink", "--count", "2", "--redis-url", &url]);
    tail.wait_for_stderr("watching pink");
    publish("harold", "not-for-pink");
    publish("pink", "for-pink");
    publish("*", "for-everyone");
    let out = tail.finish();
    let lines: Vec<&str> = out.ok().lines().collect();
    assert_eq!(lines.len(), 2, "{out:?}");
    assert!(
        lines[0].contains("for-pink") && lines[0].contains("harold -> pink"),
        "{out:?}"
    );
    assert!(
        lines[1].contains("for-everyone") && lines[1].contains("harold -> *"),
        "{out:?}"
    );

    // JSON, every agent, heartbeats too.
    let mut tail = Running::spawn(&[
        "tail",
        "*",
        "--heartbeats",
        "--count",
        "2",
        "--json",
        "--redis-url",
        &url,
    ]);
    tail.wait_for_stderr("watching *");
    publish("harold", "for-harold");
    cli(&["heartbeat", "pink", "--redis-url", &url]).ok();
    let out = tail.finish();
    let json = out.json_lines();
    assert_eq!(json[0]["kind"], "task");
    assert_eq!(json[0]["data"]["id"], "for-harold");
    assert_eq!(json[1]["kind"], "heartbeat");
    assert_eq!(json[1]["data"]["agent"], "pink");
}

#[tokio::test]
async fn tail_consume_takes_tasks_as_the_agent_and_acks_them() {
    let redis = RedisServer::start();
    let url = redis.url();
    // Published before anyone consumes: it waits in Redis. Critical comes first.
    for (priority, id) in [("low", "later"), ("critical", "first")] {
        cli(&[
            "publish",
            "--redis-url",
            &url,
            "--to",
            "pink",
            "--type",
            "coding",
            "--priority",
            priority,
            "--id",
            id,
        ])
        .ok();
    }
    let out = cli(&[
        "tail",
        "pink",
        "--consume",
        "--consumer",
        "ops-1",
        "--count",
        "1",
        "--json",
        "--redis-url",
        &url,
    ]);
    let json = out.json_lines();
    assert_eq!(json.len(), 1, "{out:?}");
    assert_eq!(json[0]["data"]["id"], "first");
    assert_eq!(json[0]["delivery_count"], 1);
    assert!(out.stderr.contains("consuming pink as ops-1"), "{out:?}");
    let mut conn = redis.connection().await;
    assert_eq!(
        pending(&mut conn, "cortex:tasks:critical", "agent:pink").await,
        0
    );
    // Only one was taken: the other is still there for pink.
    let out = cli(&[
        "tail",
        "pink",
        "--consume",
        "--count",
        "1",
        "--redis-url",
        &url,
    ]);
    assert!(out.ok().contains("later"), "{out:?}");
    assert_eq!(
        pending(&mut conn, "cortex:tasks:low", "agent:pink").await,
        0
    );

    cli(&["tail", "*", "--consume", "--redis-url", &url]).fails(2, &["--consume needs one agent"]);
}

#[tokio::test]
async fn dlq_list_retry_and_delete_on_redis() {
    let redis = RedisServer::start();
    let url = redis.url();
    let mut conn = redis.connection().await;
    let first = add_letter(
        &mut conn,
        &seed_letter("failed-001", "pink", "processing timeout"),
    )
    .await;
    let second = add_letter(&mut conn, &seed_letter("failed-002", "blue", "crashed")).await;
    let mut broken = seed_letter("broken-003", "pink", "field `payload`: not valid JSON");
    broken[5].1 = "{nope".into();
    let third = add_letter(&mut conn, &broken).await;

    // For people: a table, newest first.
    let out = cli(&["dlq", "list", "--redis-url", &url]);
    let lines: Vec<&str> = out.ok().lines().collect();
    assert!(
        lines[0].starts_with("DLQ ID") && lines[0].contains("ERROR"),
        "{out:?}"
    );
    assert_eq!(lines.len(), 4, "{out:?}");
    assert!(
        lines[1].starts_with(&third) && lines[3].starts_with(&first),
        "{out:?}"
    );
    assert!(lines[3].contains("harold -> pink") && lines[3].ends_with("processing timeout"));
    // Columns line up.
    let column = |line: &str| line.find("harold").unwrap();
    assert_eq!(column(lines[1]), column(lines[2]));

    // For scripts, with the relay API's filters: one letter per line, in its shape.
    let json = cli(&[
        "dlq",
        "list",
        "--json",
        "--agent",
        "pink",
        "--redis-url",
        &url,
    ])
    .json_lines();
    let ids: Vec<&str> = json.iter().map(|v| v["dlq_id"].as_str().unwrap()).collect();
    assert_eq!(ids, [third.as_str(), first.as_str()]);
    assert_eq!(json[1]["original_id"], "failed-001");
    assert_eq!(json[1]["retry_count"], 3);
    let json = cli(&[
        "dlq",
        "list",
        "--json",
        "--error",
        "CRASH",
        "--redis-url",
        &url,
    ])
    .json_lines();
    assert_eq!(json.len(), 1);
    assert_eq!(json[0]["original_id"], "failed-002");
    let json = cli(&[
        "dlq",
        "list",
        "--json",
        "--payload",
        "data",
        "--limit",
        "1",
        "--redis-url",
        &url,
    ])
    .json_lines();
    assert_eq!(json.len(), 1);
    assert_eq!(json[0]["dlq_id"], second.as_str());

    // Retry: the original task is back on its stream, the letter gone.
    let out = cli(&["dlq", "retry", &first, "--redis-url", &url]);
    assert!(
        out.ok()
            .starts_with(&format!("retried {first}  task failed-001")),
        "{out:?}"
    );
    let high = entries(&mut conn, "cortex:tasks:high").await;
    assert_eq!(high.len(), 1);
    let task = TaskMessage::from_fields(pairs(&high[0].1)).unwrap();
    assert_eq!(
        (task.id.as_str(), task.to.as_str(), task.created),
        ("failed-001", "pink", 1_704_556_800)
    );
    assert_eq!(task.payload["test"], "data");
    assert!(
        high[0]
            .1
            .contains(&("retried_from".to_owned(), first.clone())),
        "{high:?}"
    );
    // With another priority, for scripts.
    let json = cli(&[
        "dlq",
        "retry",
        &second,
        "--priority",
        "critical",
        "--json",
        "--redis-url",
        &url,
    ])
    .json_lines();
    assert_eq!(json[0]["stream"], "cortex:tasks:critical");
    assert_eq!(json[0]["task_id"], "failed-002");
    let critical = entries(&mut conn, "cortex:tasks:critical").await;
    assert_eq!(critical[0].0, json[0]["entry_id"].as_str().unwrap());
    let task = TaskMessage::from_fields(pairs(&critical[0].1)).unwrap();
    assert_eq!(task.priority.as_str(), "critical");

    // Twice: already retried, as the relay would say. A letter whose task does not
    // decode: refused, kept.
    cli(&["dlq", "retry", &first, "--redis-url", &url])
        .fails(1, &["already_retried", "was already retried", &first]);
    cli(&["dlq", "retry", &third, "--redis-url", &url])
        .fails(1, &["cannot be retried", "field `payload`"]);
    let left = entries(&mut conn, DLQ_STREAM).await;
    assert_eq!(left.len(), 1);
    assert_eq!(entries(&mut conn, "cortex:tasks:high").await.len(), 1);

    // Delete: gone; an unknown one among several is reported, the others deleted.
    let extra = add_letter(&mut conn, &seed_letter("failed-004", "pink", "x")).await;
    let out = cli(&["dlq", "delete", &third, "1-1", &extra, "--redis-url", &url]);
    out.fails(
        1,
        &[
            "not_found: no dead letter 1-1",
            "1 of 3 dead letters were not deleted",
        ],
    );
    assert!(
        out.stdout.contains(&format!("deleted {third}"))
            && out.stdout.contains(&format!("deleted {extra}"))
    );
    assert!(entries(&mut conn, DLQ_STREAM).await.is_empty());
    let out = cli(&["dlq", "list", "--redis-url", &url]);
    assert_eq!(out.ok(), "");
    assert!(out.stderr.contains("no dead letters"));
    let letter = DeadLetter::from_fields(
        seed_letter("x", "pink", "e")
            .iter()
            .map(|(k, v)| (*k, v.as_str())),
    )
    .unwrap();
    assert_eq!(letter.retry_count, 3);
}

/// `dlq retry` and `dlq delete` straight on Redis (no relay in between) do what the
/// relay's API does: a dashboard watching any relay is told at once, and a second
/// action on the letter, by the CLI or over HTTP, is refused as already done (409),
/// not as unknown (404).
#[tokio::test]
async fn dlq_actions_on_redis_are_announced_and_remembered_as_the_apis_are() {
    let redis = RedisServer::start();
    let url = redis.url();
    let relay = Relay::start(&url);
    let mut conn = redis.connection().await;
    let mut dashboard = cortex_e2e::ws::WsClient::connect(&relay.ws_url()).await;
    dashboard.subscribe("*").await;
    let dlq_frame = |frame: Value| {
        assert_eq!(frame["type"], "dlq", "{frame}");
        frame
    };

    let first = add_letter(
        &mut conn,
        &seed_letter("failed-001", "pink", "processing timeout"),
    )
    .await;
    let added = dlq_frame(dashboard.next_of_type("dlq").await);
    assert_eq!(
        (&added["action"], &added["dlq_ids"]),
        (&json!("added"), &json!([first]))
    );

    // Retried on Redis: the watcher hears of it, as of a retry through the API.
    let retried = cli(&["dlq", "retry", &first, "--json", "--redis-url", &url]).json_lines();
    let frame = dlq_frame(dashboard.next_of_type("dlq").await);
    assert_eq!(
        (&frame["action"], &frame["dlq_ids"]),
        (&json!("retried"), &json!([first]))
    );
    // It answers as the API does.
    assert_eq!(retried[0]["dlq_id"], first.as_str());
    assert_eq!(retried[0]["retry_count"], 1);
    assert_eq!(retried[0]["edited"], false);
    // The task counts its retry from the DLQ, as the API's does.
    let high = entries(&mut conn, "cortex:tasks:high").await;
    assert_eq!(high.len(), 1);
    assert!(
        high[0]
            .1
            .contains(&("retry_count".to_owned(), "1".to_owned())),
        "{high:?}"
    );

    // Again, by the CLI and over HTTP: already retried (409), not unknown (404).
    cli(&["dlq", "retry", &first, "--redis-url", &url]).fails(1, &["already_retried", &first]);
    let (status, body) = cortex_e2e::http::json(
        relay.addr(),
        "POST",
        &format!("/api/v1/messaging/dlq/retry/{first}"),
        None,
    )
    .await;
    assert_eq!(
        (status, &body["code"]),
        (409, &json!("already_retried")),
        "{body}"
    );
    cli(&["dlq", "delete", &first, "--redis-url", &url]).fails(1, &["already_retried", &first]);

    // The same for a delete.
    let second = add_letter(&mut conn, &seed_letter("failed-002", "blue", "crashed")).await;
    let added = dlq_frame(dashboard.next_of_type("dlq").await);
    assert_eq!(added["dlq_ids"], json!([second]));
    let out = cli(&["dlq", "delete", &second, "--redis-url", &url]);
    assert_eq!(out.ok().trim(), format!("deleted {second}"));
    let frame = dlq_frame(dashboard.next_of_type("dlq").await);
    assert_eq!(
        (&frame["action"], &frame["dlq_ids"]),
        (&json!("deleted"), &json!([second]))
    );
    cli(&["dlq", "delete", &second, "--redis-url", &url]).fails(1, &["already_deleted", &second]);
    cli(&["dlq", "retry", &second, "--redis-url", &url]).fails(1, &["already_deleted", &second]);
    let (status, body) = cortex_e2e::http::json(
        relay.addr(),
        "DELETE",
        &format!("/api/v1/messaging/dlq/{second}"),
        None,
    )
    .await;
    assert_eq!(
        (status, &body["code"]),
        (409, &json!("already_deleted")),
        "{body}"
    );

    // A letter nobody ever had is still unknown.
    cli(&["dlq", "retry", "1-1", "--redis-url", &url]).fails(1, &["not_found: no dead letter 1-1"]);
    assert!(entries(&mut conn, DLQ_STREAM).await.is_empty());
}

#[test]
fn bad_input_is_refused_before_touching_redis() {
    // Nothing listens on port 1: a refusal that reached Redis would say so instead.
    let nowhere = "redis://127.0.0.1:1/";
    let cases: &[(&[&str], &[&str])] = &[
        (
            &[
                "publish",
                "--to",
                "pink",
                "--type",
                "coding",
                "--payload",
                "{not json",
            ],
            &["--payload", "not valid JSON"],
        ),
        (
            &[
                "publish",
                "--to",
                "pink",
                "--type",
                "coding",
                "--payload",
                "[1,2]",
            ],
            &["--payload", "expected a JSON object, found an array"],
        ),
        (
            &[
                "publish",
                "--to",
                "pink",
                "--type",
                "coding",
                "--priority",
                "urgent",
            ],
            &["--priority", "unknown priority \"urgent\""],
        ),
        (
            &["publish", "--to", "pi/nk", "--type", "coding"],
            &["--to", "agent name contains '/'"],
        ),
        (
            &["publish", "--from", "", "--to", "pink", "--type", "coding"],
            &["--from", "agent name is empty"],
        ),
        (&["publish", "--to", "pink"], &["--type"]),
        (
            &["heartbeat", "pink", "--status", "idle"],
            &["--status", "not valid JSON"],
        ),
        (&["heartbeat", &"x".repeat(65)], &["65 characters long"]),
        (&["tail", "pink pong"], &["contains ' '"]),
        (&["tail", "pink", "--count", "0"], &["--count"]),
        (
            &["dlq", "retry", "abc"],
            &["\"abc\" is not a stream entry id"],
        ),
        (
            &["dlq", "retry", "1-0", "--priority", "soon"],
            &["unknown priority"],
        ),
        (&["dlq", "delete"], &["<ID>"]),
        (&["dlq", "list", "--to", "a b"], &["--to"]),
        (
            &["replay", "high", "--start", "yesterday"],
            &["--start", "not a range bound"],
        ),
        (
            &["replay", "high", "--count", "1", "--last", "1"],
            &["--count", "--last"],
        ),
        (
            &["tail", "pink", "--relay", "ftp://relay"],
            &["--relay", "not a relay URL"],
        ),
    ];
    for (args, needles) in cases {
        let mut args = args.to_vec();
        args.extend(["--redis-url", nowhere]);
        let out = cli(&args);
        out.fails(2, needles);
        assert!(!out.stderr.contains("refused"), "touched Redis: {out:?}");
        assert_eq!(out.stdout, "", "{out:?}");
    }
}

#[test]
fn an_unreachable_redis_is_a_clear_failure() {
    let out = cli(&[
        "publish",
        "--to",
        "pink",
        "--type",
        "coding",
        "--redis-url",
        "redis://:s3cret@127.0.0.1:1/",
    ]);
    out.fails(
        1,
        &["Redis at redis://:****@127.0.0.1:1/", "Connection refused"],
    );
    assert!(!out.stderr.contains("s3cret"), "{out:?}");
    cli(&["dlq", "list", "--redis-url", "redis://127.0.0.1:1/"])
        .fails(1, &["Redis at redis://127.0.0.1:1/"]);
    cli(&["tail", "pink", "--redis-url", "redis://127.0.0.1:1/"]).fails(1, &["Redis at"]);
    cli(&["dlq", "list", "--relay", "http://127.0.0.1:1"])
        .fails(1, &["relay at http://127.0.0.1:1"]);
}

const ADMIN: &str = "admin-token-0123456789";
const VIEWER: &str = "viewer-token-0123456789";

/// A relay with an admin and a viewer token.
fn relay_with_tokens(redis_url: &str) -> (Relay, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "relay:\n  tokens:\n    - {{token: {ADMIN}, role: admin}}\n    \
             - {{token: {VIEWER}, role: viewer}}\n"
        ),
    )
    .unwrap();
    let relay = Relay::spawn(&[
        "--listen",
        "127.0.0.1:0",
        "--redis-url",
        redis_url,
        "--config",
        config.to_str().unwrap(),
    ]);
    (relay, dir)
}

#[tokio::test]
async fn through_a_relay_with_tokens_tail_publish_and_dlq() {
    let redis = RedisServer::start();
    let url = redis.url();
    let (relay, _dir) = relay_with_tokens(&url);
    let base = format!("http://{}", relay.addr());
    let via = |args: &[&str], token: &str| {
        let mut args = args.to_vec();
        args.extend(["--relay", &base, "--token", token]);
        cli(&args)
    };

    // Watch with the viewer's token; publish through the relay as admin.
    let mut tail = Running::spawn(&[
        "tail", "pink", "--relay", &base, "--token", VIEWER, "--count", "1", "--json",
    ]);
    tail.wait_for_stderr("watching pink via");
    via(&["publish", "--to", "harold", "--type", "coding"], ADMIN).ok();
    let published = via(
        &[
            "publish",
            "--from",
            "harold",
            "--to",
            "pink",
            "--priority",
            "high",
            "--type",
            "coding",
            "--payload",
            r#"{"a":1}"#,
            "--json",
        ],
        ADMIN,
    )
    .json_lines();
    let task_id = published[0]["task_id"].as_str().unwrap().to_owned();
    assert_eq!(published[0]["stream"], "cortex:tasks:high");
    let json = tail.finish().json_lines();
    assert_eq!(json.len(), 1);
    assert_eq!(json[0]["kind"], "task");
    assert_eq!(json[0]["data"]["id"], task_id.as_str());
    assert_eq!(json[0]["data"]["from"], "harold");
    assert_eq!(json[0]["data"]["payload"]["a"], 1);

    // Refusals: no token, a viewer publishing or consuming.
    cli(&["tail", "pink", "--relay", &base]).fails(1, &["unauthorized", "--token"]);
    via(&["publish", "--to", "pink", "--type", "coding"], VIEWER)
        .fails(1, &["the relay refused: forbidden"]);
    via(&["tail", "pink", "--consume"], VIEWER).fails(1, &["the relay refused: forbidden"]);
    via(&["dlq", "list"], "wrong-token-0123456789").fails(1, &["the relay refused: unauthorized"]);

    // Consume as admin: it takes the task (pending since published) and acks it.
    let out = via(
        &[
            "tail",
            "pink",
            "--consume",
            "--consumer",
            "ops-2",
            "--count",
            "1",
        ],
        ADMIN,
    );
    assert!(out.ok().contains(&task_id), "{out:?}");
    assert!(
        out.stderr.contains("consuming pink as ops-2 via"),
        "{out:?}"
    );
    let mut conn = redis.connection().await;
    assert_eq!(
        pending(&mut conn, "cortex:tasks:high", "agent:pink").await,
        0
    );

    // The DLQ through the relay's API.
    let first = add_letter(
        &mut conn,
        &seed_letter("failed-001", "pink", "processing timeout"),
    )
    .await;
    let second = add_letter(&mut conn, &seed_letter("failed-002", "blue", "crashed")).await;
    let out = via(&["dlq", "list"], VIEWER);
    let lines: Vec<&str> = out.ok().lines().collect();
    assert_eq!(lines.len(), 3, "{out:?}");
    assert!(
        lines[1].starts_with(&second) && lines[2].starts_with(&first),
        "{out:?}"
    );
    let json = via(&["dlq", "list", "--json", "--agent", "pink"], VIEWER).json_lines();
    assert_eq!(json.len(), 1);
    assert_eq!(json[0]["dlq_id"], first.as_str());
    assert_eq!(json[0]["original_id"], "failed-001");
    via(&["dlq", "retry", &first], VIEWER).fails(1, &["forbidden"]);
    let json = via(
        &["dlq", "retry", &first, "--priority", "critical", "--json"],
        ADMIN,
    )
    .json_lines();
    assert_eq!(json[0]["task_id"], "failed-001");
    assert_eq!(json[0]["stream"], "cortex:tasks:critical");
    let critical = entries(&mut conn, "cortex:tasks:critical").await;
    assert_eq!(critical[0].0, json[0]["entry_id"].as_str().unwrap());
    via(&["dlq", "retry", &first], ADMIN).fails(1, &["already_retried"]);
    let out = via(&["dlq", "delete", &second], ADMIN);
    assert_eq!(out.ok().trim(), format!("deleted {second}"));
    via(&["dlq", "delete", &second], ADMIN).fails(1, &["already_deleted"]);
    assert!(entries(&mut conn, DLQ_STREAM).await.is_empty());
}

#[test]
fn the_example_config_loads() {
    let config = cortex_e2e::workspace_root().join("deploy/config.example.yaml");
    let out = cli(&["--config", config.to_str().unwrap(), "--print-config"]);
    assert!(out.ok().contains("listen: 127.0.0.1:8080"), "{out:?}");
    assert!(
        cortex_e2e::workspace_root()
            .join("deploy/cortex-relay.service")
            .is_file(),
        "the systemd unit is in the repository"
    );
}
