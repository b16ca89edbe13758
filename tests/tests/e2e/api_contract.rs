//! The HTTP contract: every route and status code in the README's "HTTP API" table is
//! served as documented, and the table lists every route this test knows. Each listed
//! status is provoked on a real relay (503 by killing Redis), and every error answer is
//! the documented `{"code","message"}`.

use crate::api_common;

use api_common::*;
use cortex_e2e::redis::RedisServer;
use cortex_e2e::relay::Relay;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// One row of the README's route table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Route {
    method: String,
    path: String,
    success: u16,
    errors: Vec<u16>,
}

/// The route table of the README's "## HTTP API" section: rows whose first cell is a
/// method in backticks.
fn readme_routes() -> Vec<Route> {
    let readme =
        std::fs::read_to_string(cortex_e2e::workspace_root().join("README.md")).expect("README.md");
    let section = readme
        .split("\n## HTTP API\n")
        .nth(1)
        .expect("README has a \"## HTTP API\" section")
        .split("\n## ")
        .next()
        .unwrap();
    let cell = |c: &str| c.trim().trim_matches('`').to_owned();
    section
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.trim().strip_prefix('|')?.split('|').collect();
            let method = cell(cells.first()?);
            if !["GET", "POST", "DELETE", "PUT", "PATCH"].contains(&method.as_str()) {
                return None;
            }
            Some(Route {
                method,
                path: cell(cells[1]),
                success: cell(cells[2]).parse().expect("success status"),
                errors: cell(cells[3])
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse().expect("error status"))
                    .collect(),
            })
        })
        .collect()
}

/// Fixtures the requests refer to.
struct Ids {
    letter: String,
    to_delete: String,
    retried: String,
    bad: String,
    /// The entry id of task `t-known` in `cortex:tasks:high`, XADDed directly (no
    /// lifecycle record: found by the scan).
    task_entry: String,
}

/// A request that provokes `status` on `method path`: (method, concrete path, body).
fn recipe(
    method: &str,
    path: &str,
    status: u16,
    ids: &Ids,
) -> Option<(&'static str, String, Option<Value>)> {
    let dlq = |id: &str| format!("/api/v1/messaging/dlq/{id}");
    let retry = |id: &str| format!("/api/v1/messaging/dlq/retry/{id}");
    let entries = |s: &str| format!("/api/v1/streams/{s}/entries");
    let task = json!({"to": "pink", "priority": "high", "type": "coding"});
    let tasks = "/api/v1/tasks";
    Some(match (method, path, status) {
        ("GET", "/healthz", 200) => ("GET", path.into(), None),
        ("GET", "/readyz", 200 | 503) => ("GET", path.into(), None),
        ("GET", "/metrics", 200) => ("GET", path.into(), None),
        ("GET", "/api/v1/messaging/metrics", 200 | 503) => ("GET", path.into(), None),
        ("GET", "/api/v1/messaging/dlq", 200 | 503) => ("GET", path.into(), None),
        ("GET", "/api/v1/messaging/dlq", 400) => ("GET", format!("{path}?agnet=pink"), None),
        ("GET", "/api/v1/messaging/dlq/stats", 200 | 503) => ("GET", path.into(), None),
        ("GET", "/api/v1/messaging/dlq/{dlq_id}", 200 | 503) => ("GET", dlq(&ids.letter), None),
        ("GET", "/api/v1/messaging/dlq/{dlq_id}", 400) => ("GET", dlq("not-an-id"), None),
        ("GET", "/api/v1/messaging/dlq/{dlq_id}", 404) => ("GET", dlq("1-1"), None),
        ("DELETE", "/api/v1/messaging/dlq/{dlq_id}", 200 | 503) => {
            ("DELETE", dlq(&ids.to_delete), None)
        }
        ("DELETE", "/api/v1/messaging/dlq/{dlq_id}", 400) => ("DELETE", dlq("x"), None),
        ("DELETE", "/api/v1/messaging/dlq/{dlq_id}", 404) => ("DELETE", dlq("1-1"), None),
        ("DELETE", "/api/v1/messaging/dlq/{dlq_id}", 409) => ("DELETE", dlq(&ids.retried), None),
        ("POST", "/api/v1/messaging/dlq/retry/{dlq_id}", 200 | 503) => {
            ("POST", retry(&ids.letter), Some(json!({"priority": "low"})))
        }
        ("POST", "/api/v1/messaging/dlq/retry/{dlq_id}", 400) => (
            "POST",
            retry(&ids.letter),
            Some(json!({"priority": "urgent"})),
        ),
        ("POST", "/api/v1/messaging/dlq/retry/{dlq_id}", 404) => ("POST", retry("1-1"), None),
        ("POST", "/api/v1/messaging/dlq/retry/{dlq_id}", 409) => {
            ("POST", retry(&ids.retried), None)
        }
        ("POST", "/api/v1/messaging/dlq/retry/{dlq_id}", 422) => ("POST", retry(&ids.bad), None),
        ("POST", "/api/v1/messaging/dlq/retry", 200 | 503) => (
            "POST",
            path.into(),
            Some(json!({"filter": {"agent": "nobody"}})),
        ),
        ("POST", "/api/v1/messaging/dlq/retry", 400) => ("POST", path.into(), Some(json!({}))),
        ("POST", "/api/v1/messaging/dlq/delete", 200 | 503) => {
            ("POST", path.into(), Some(json!({"ids": ["1-1"]})))
        }
        ("POST", "/api/v1/messaging/dlq/delete", 400) => {
            ("POST", path.into(), Some(json!({"filter": {"agnet": "x"}})))
        }
        ("GET", "/api/v1/streams/{stream}/entries", 200 | 503) => {
            ("GET", entries("cortex:tasks:high"), None)
        }
        ("GET", "/api/v1/streams/{stream}/entries", 400) => (
            "GET",
            format!("{}?last=0", entries("cortex:tasks:high")),
            None,
        ),
        ("GET", "/api/v1/streams/{stream}/entries", 404) => ("GET", entries("secrets"), None),
        ("GET", "/api/v1/agents", 200 | 503) => ("GET", path.into(), None),
        ("GET", "/api/v1/agents/{name}/outcomes", 200 | 503) => {
            ("GET", "/api/v1/agents/pink/outcomes".into(), None)
        }
        ("GET", "/api/v1/agents/{name}/outcomes", 400) => {
            ("GET", "/api/v1/agents/pi%20nk/outcomes".into(), None)
        }
        ("POST", "/api/v1/tasks", 201 | 503) => ("POST", path.into(), Some(task)),
        ("POST", "/api/v1/tasks", 400) => (
            "POST",
            path.into(),
            Some(json!({"to": "pink", "priority": "high", "type": "two words"})),
        ),
        ("GET", "/api/v1/tasks/{task_id}", 200 | 503) => ("GET", format!("{tasks}/t-known"), None),
        ("GET", "/api/v1/tasks/{task_id}", 400) => {
            ("GET", format!("{tasks}/{}", "x".repeat(2000)), None)
        }
        ("GET", "/api/v1/tasks/{task_id}", 404) => ("GET", format!("{tasks}/t-unknown"), None),
        ("GET", "/api/v1/tasks/by-entry/{stream}/{entry_id}", 200 | 503) => (
            "GET",
            format!("{tasks}/by-entry/cortex:tasks:high/{}", ids.task_entry),
            None,
        ),
        ("GET", "/api/v1/tasks/by-entry/{stream}/{entry_id}", 400) => (
            "GET",
            format!("{tasks}/by-entry/cortex:tasks:high/not-an-id"),
            None,
        ),
        ("GET", "/api/v1/tasks/by-entry/{stream}/{entry_id}", 404) => (
            "GET",
            format!("{tasks}/by-entry/cortex:tasks:high/1-1"),
            None,
        ),
        ("GET", "/api/v1/tasks?agent=…&state=…", 200 | 503) => {
            ("GET", format!("{tasks}?agent=pink&state=waiting"), None)
        }
        ("GET", "/api/v1/tasks?agent=…&state=…", 400) => {
            ("GET", format!("{tasks}?agent=pink&state=sleeping"), None)
        }
        ("GET", "/api/v1/traces/{correlation_id}", 200 | 503) => {
            ("GET", "/api/v1/traces/c-known".into(), None)
        }
        ("GET", "/api/v1/traces/{correlation_id}", 400) => {
            ("GET", "/api/v1/traces/a%20b".into(), None)
        }
        ("GET", "/api/v1/traces/{correlation_id}", 404) => {
            ("GET", "/api/v1/traces/c-unknown".into(), None)
        }
        _ => return None,
    })
}

/// Every (method, path) this test has recipes for.
const KNOWN: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/api/v1/messaging/metrics"),
    ("GET", "/api/v1/messaging/dlq"),
    ("GET", "/api/v1/messaging/dlq/stats"),
    ("GET", "/api/v1/messaging/dlq/{dlq_id}"),
    ("DELETE", "/api/v1/messaging/dlq/{dlq_id}"),
    ("POST", "/api/v1/messaging/dlq/retry/{dlq_id}"),
    ("POST", "/api/v1/messaging/dlq/retry"),
    ("POST", "/api/v1/messaging/dlq/delete"),
    ("GET", "/api/v1/streams/{stream}/entries"),
    ("GET", "/api/v1/agents"),
    ("GET", "/api/v1/agents/{name}/outcomes"),
    ("POST", "/api/v1/tasks"),
    ("GET", "/api/v1/tasks/{task_id}"),
    ("GET", "/api/v1/tasks/by-entry/{stream}/{entry_id}"),
    ("GET", "/api/v1/tasks?agent=…&state=…"),
    ("GET", "/api/v1/traces/{correlation_id}"),
];

async fn check(addr: &str, route: &Route, status: u16, ids: &Ids) {
    let (method, path, body) = recipe(&route.method, &route.path, status, ids)
        .unwrap_or_else(|| panic!("no request provokes {status} on {route:?}"));
    let (got, text) =
        cortex_e2e::http::request(addr, method, &path, body.map(|b| b.to_string()).as_deref())
            .await;
    assert_eq!(got, status, "{method} {path}: {text}");
    if route.path.starts_with("/api/") || status >= 400 {
        let json: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}"));
        if status >= 400 {
            let keys: BTreeSet<&str> = json
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(
                keys,
                BTreeSet::from(["code", "message"]),
                "{method} {path}: {text}"
            );
            if status == 503 {
                assert_eq!(json["code"], "redis_unavailable");
            }
        }
    }
}

#[tokio::test]
async fn every_documented_route_answers_every_documented_status() {
    let routes = readme_routes();
    let documented: BTreeSet<(String, String)> = routes
        .iter()
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    let known: BTreeSet<(String, String)> = KNOWN
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(
        documented, known,
        "the README's route table and this test disagree"
    );
    assert_eq!(documented.len(), routes.len(), "a route is listed twice");

    let mut redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let addr = relay.addr();
    let mut conn = redis.connection().await;
    let ok = letter("t-ok", "pink", "harold", "high", "timeout", "{}");
    let ids = Ids {
        letter: add_letter(&mut conn, &ok).await,
        to_delete: add_letter(&mut conn, &ok).await,
        retried: add_letter(&mut conn, &ok).await,
        bad: add_letter(
            &mut conn,
            &letter("t-bad", "pink", "harold", "high", "x", "{broken"),
        )
        .await,
        task_entry: cortex_e2e::redis::xadd(
            &mut conn,
            "cortex:tasks:high",
            &[
                ("id", "t-known"),
                ("from", "harold"),
                ("to", "pink"),
                ("priority", "high"),
                ("type", "coding"),
                ("payload", "{}"),
                ("created", "1704556800"),
            ],
        )
        .await,
    };
    let (status, _) = api(
        addr,
        "POST",
        &format!("/api/v1/messaging/dlq/retry/{}", ids.retried),
        None,
    )
    .await;
    assert_eq!(status, 200);
    // A trace the relay knows of (published through it).
    let (status, _) = api(
        addr,
        "POST",
        "/api/v1/tasks",
        Some(json!({"to": "pink", "priority": "high", "type": "coding", "correlation_id": "c-known"})),
    )
    .await;
    assert_eq!(status, 201);

    // Errors first (they change nothing), then successes, then, without Redis, 503s.
    for route in &routes {
        for status in route.errors.iter().filter(|s| **s != 503) {
            check(addr, route, *status, &ids).await;
        }
    }
    for route in &routes {
        check(addr, route, route.success, &ids).await;
    }
    // Beyond the table: unknown paths and methods under /api/v1.
    let (status, body) = api(addr, "GET", "/api/v1/nothing", None).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    let (status, body) = api(addr, "PUT", "/api/v1/agents", None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (405, Some("method_not_allowed"))
    );

    redis.kill();
    let mut without_redis: BTreeMap<String, u16> = BTreeMap::new();
    for route in &routes {
        if route.errors.contains(&503) {
            check(addr, route, 503, &ids).await;
            without_redis.insert(format!("{} {}", route.method, route.path), 503);
        } else {
            // Routes that do not list 503 answer without Redis.
            let (method, path, body) =
                recipe(&route.method, &route.path, route.success, &ids).unwrap();
            let (got, text) = cortex_e2e::http::request(
                addr,
                method,
                &path,
                body.map(|b| b.to_string()).as_deref(),
            )
            .await;
            assert_eq!(got, route.success, "{method} {path} without Redis: {text}");
            without_redis.insert(format!("{} {}", route.method, route.path), got);
        }
    }
    assert_eq!(without_redis["GET /healthz"], 200);
    assert_eq!(without_redis["GET /readyz"], 503);
}
