//! The dead-letter API end to end (real redis-server, the relay binary): listing with
//! filters and paging, one letter, retry (with priority and edited payload, and its
//! atomicity under concurrent requests), delete, bulk actions, stats.

use crate::api_common;

use api_common::*;
use cortex_e2e::redis::RedisServer;
use cortex_e2e::relay::Relay;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// `POST /api/v1/messaging/dlq/retry/<dlq_id>` with `body`.
async fn retry(addr: &str, dlq_id: &str, body: Option<Value>) -> (u16, Value) {
    let path = format!("/api/v1/messaging/dlq/retry/{dlq_id}");
    api(addr, "POST", &path, body).await
}

/// `DELETE /api/v1/messaging/dlq/<dlq_id>`.
async fn delete(addr: &str, dlq_id: &str) -> (u16, Value) {
    api(
        addr,
        "DELETE",
        &format!("/api/v1/messaging/dlq/{dlq_id}"),
        None,
    )
    .await
}

#[tokio::test]
async fn listing_is_newest_first_filtered_and_paged() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let addr = relay.addr();
    let mut conn = redis.connection().await;

    // 40 letters at known times: 1000 ms apart, varied fields.
    let agents = ["pink", "harold", "blue", "green"];
    let priorities = ["critical", "high", "normal", "low"];
    let mut ids = Vec::new();
    for n in 0..40usize {
        let mut l = letter(
            &format!("task-{n}"),
            agents[n % 4],
            agents[(n + 1) % 4],
            priorities[n % 4],
            if n % 5 == 0 {
                "Processing TIMEOUT"
            } else {
                "crashed"
            },
            &json!({"n": n, "note": if n % 7 == 0 { "Needle" } else { "hay" }}).to_string(),
        );
        if n % 3 == 0 {
            l.original_type = "review".into();
        }
        ids.push(add_letter_at(&mut conn, &format!("{}-0", 1_000_000 + n * 1000), &l).await);
    }
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();

    // Everything, in one page and in pages of 7.
    let page = get_ok(addr, "/api/v1/messaging/dlq?limit=1000").await;
    let listed: Vec<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["dlq_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, newest_first);
    assert_eq!(page["next_cursor"], serde_json::Value::Null);
    let first = &page["items"][0];
    assert_eq!(first["original_id"], "task-39");
    assert_eq!(first["original_to"], "green");
    assert_eq!(first["retry_count"], 3);
    assert_eq!(list_all(addr, "", 7).await, newest_first);
    // The default page is 50.
    assert_eq!(
        get_ok(addr, "/api/v1/messaging/dlq").await["items"]
            .as_array()
            .unwrap()
            .len(),
        40
    );

    let expect = |pred: &dyn Fn(usize) -> bool| -> Vec<String> {
        (0..40)
            .rev()
            .filter(|n| pred(*n))
            .map(|n| ids[n].clone())
            .collect()
    };
    // agent: to or from.
    assert_eq!(
        list_all(addr, "agent=pink", 3).await,
        expect(&|n| agents[n % 4] == "pink" || agents[(n + 1) % 4] == "pink")
    );
    assert_eq!(
        list_all(addr, "priority=low", 100).await,
        expect(&|n| n % 4 == 3)
    );
    assert_eq!(
        list_all(addr, "type=review", 100).await,
        expect(&|n| n % 3 == 0)
    );
    assert_eq!(
        list_all(addr, "error=timeout", 2).await,
        expect(&|n| n % 5 == 0)
    );
    assert_eq!(
        list_all(addr, "payload=needle", 100).await,
        expect(&|n| n % 7 == 0)
    );
    // Time range, inclusive, on the letters' DLQ ids.
    assert_eq!(
        list_all(addr, "since_ms=1010000&until_ms=1020000", 4).await,
        expect(&|n| (10..=20).contains(&n))
    );
    // Everything at once.
    assert_eq!(
        list_all(addr, "agent=pink&error=TIMEOUT&since_ms=1005000", 100).await,
        expect(&|n| n >= 5
            && n % 5 == 0
            && (agents[n % 4] == "pink" || agents[(n + 1) % 4] == "pink"))
    );
    // Filters matching nothing: an empty last page.
    for query in [
        "agent=nobody",
        "error=no-such-error",
        "payload=zzz",
        "since_ms=2000000",
        "until_ms=5",
        "priority=high&type=deploy",
    ] {
        let page = get_ok(addr, &format!("/api/v1/messaging/dlq?{query}")).await;
        assert_eq!(page["items"], json!([]), "{query}");
        assert_eq!(page["next_cursor"], serde_json::Value::Null, "{query}");
    }

    // One letter; unknown and malformed ids.
    let one = get_ok(addr, &format!("/api/v1/messaging/dlq/{}", ids[3])).await;
    assert_eq!(one["dlq_id"], ids[3]);
    assert_eq!(one["original_id"], "task-3");
    assert_eq!(
        one["original_payload"],
        json!({"n": 3, "note": "hay"}).to_string()
    );
    let (status, body) = api(addr, "GET", "/api/v1/messaging/dlq/5-5", None).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    for bad in ["abc", "1-x", "-1"] {
        let (status, body) = api(addr, "GET", &format!("/api/v1/messaging/dlq/{bad}"), None).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("invalid_id")),
            "{bad}"
        );
    }
    for bad in [
        "agnet=pink",
        "priority=urgent",
        "since_ms=x",
        "limit=5000",
        "cursor=abc",
    ] {
        let (status, body) = api(addr, "GET", &format!("/api/v1/messaging/dlq?{bad}"), None).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
}

#[tokio::test]
async fn retry_republishes_once_keeps_the_id_and_records_count_and_edit() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let addr = relay.addr();
    let mut conn = redis.connection().await;

    // A letter as the consumer engine writes it, pointing at the entry it died as.
    let original = cortex_e2e::redis::xadd(
        &mut conn,
        "cortex:tasks:low",
        &[
            ("id", "task-7"),
            ("from", "harold"),
            ("to", "pink"),
            ("priority", "low"),
            ("type", "coding"),
            ("payload", r#"{"a":1}"#),
            ("created", "1704556800"),
        ],
    )
    .await;
    let mut l = letter("task-7", "pink", "harold", "low", "timeout", r#"{"a":1}"#);
    l.original_stream = Some("cortex:tasks:low".into());
    l.original_entry_id = Some(original.clone());
    let dlq_id = add_letter(&mut conn, &l).await;

    // Retry at critical with a new payload.
    let (status, body) = retry(
        addr,
        &dlq_id,
        Some(json!({"priority": "critical", "payload": {"a": 2}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["task_id"], "task-7");
    assert_eq!(body["stream"], "cortex:tasks:critical");
    assert_eq!(body["retry_count"], 1);
    assert_eq!(body["edited"], true);
    let critical = entries(&mut conn, "cortex:tasks:critical").await;
    assert_eq!(critical.len(), 1);
    let (entry_id, fields) = &critical[0];
    assert_eq!(body["entry_id"], entry_id.as_str());
    assert_eq!(fields["id"], "task-7");
    assert_eq!(fields["from"], "harold");
    assert_eq!(fields["to"], "pink");
    assert_eq!(fields["priority"], "critical");
    assert_eq!(fields["payload"], r#"{"a":2}"#);
    assert_eq!(fields["created"], "1704556800");
    assert_eq!(fields["retry_count"], "1");
    assert_eq!(fields["edited"], "true");
    assert_eq!(xlen(&mut conn, "cortex:tasks:dlq").await, 0);

    // Retrying or deleting it again: 409; reading it: 404.
    let (status, body) = retry(addr, &dlq_id, None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("already_retried"))
    );
    let (status, body) = delete(addr, &dlq_id).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("already_retried"))
    );
    let (status, _) = api(
        addr,
        "GET",
        &format!("/api/v1/messaging/dlq/{dlq_id}"),
        None,
    )
    .await;
    assert_eq!(status, 404);

    // It dies again (a letter pointing at its new entry): the next retry counts 2, and
    // goes back to the letter's priority, unedited, without a body.
    let mut again = letter(
        "task-7",
        "pink",
        "harold",
        "critical",
        "timeout",
        r#"{"a":2}"#,
    );
    again.original_stream = Some("cortex:tasks:critical".into());
    again.original_entry_id = Some(entry_id.clone());
    let second = add_letter(&mut conn, &again).await;
    let (status, body) = retry(addr, &second, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["retry_count"], 2);
    assert_eq!(body["edited"], false);
    assert_eq!(body["stream"], "cortex:tasks:critical");

    // Unknown and malformed ids, bad bodies.
    let (status, body) = api(addr, "POST", "/api/v1/messaging/dlq/retry/1-1", None).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    let (status, _) = api(addr, "POST", "/api/v1/messaging/dlq/retry/nope", None).await;
    assert_eq!(status, 400);
    let third = add_letter(&mut conn, &again).await;
    for bad in [
        json!({"priority": "urgent"}),
        json!({"payload": "text"}),
        json!({"extra": 1}),
    ] {
        let (status, body) = retry(addr, &third, Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    assert_eq!(
        xlen(&mut conn, "cortex:tasks:dlq").await,
        1,
        "refused retries leave the letter"
    );
}

#[tokio::test]
async fn a_letter_whose_task_does_not_decode_is_422_until_its_payload_is_edited() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let addr = relay.addr();
    let mut conn = redis.connection().await;
    let dlq_id = add_letter(
        &mut conn,
        &letter(
            "t-bad",
            "pink",
            "harold",
            "high",
            "field `payload`: not valid JSON",
            "{broken",
        ),
    )
    .await;
    let path = format!("/api/v1/messaging/dlq/retry/{dlq_id}");
    let (status, body) = api(addr, "POST", &path, None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("not_retryable")),
        "{body}"
    );
    assert_eq!(xlen(&mut conn, "cortex:tasks:dlq").await, 1);
    let (status, body) = api(
        addr,
        "POST",
        &path,
        Some(json!({"payload": {"fixed": true}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["edited"], true);
}

#[tokio::test]
async fn of_two_concurrent_retries_of_a_letter_exactly_one_succeeds() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let addr = relay.addr().to_owned();
    let mut conn = redis.connection().await;
    let letters: Vec<_> = (0..50)
        .map(|n| letter(&format!("race-{n}"), "pink", "harold", "normal", "x", "{}"))
        .collect();
    let ids = add_letters(&mut conn, &letters).await;
    let mut races = Vec::new();
    for id in &ids {
        let path = format!("/api/v1/messaging/dlq/retry/{id}");
        let (a, b) = (addr.clone(), addr.clone());
        let (p1, p2) = (path.clone(), path);
        races.push(tokio::spawn(async move {
            let (x, y) = tokio::join!(api(&a, "POST", &p1, None), api(&b, "POST", &p2, None));
            (x.0, y.0, x.1, y.1)
        }));
    }
    for race in races {
        let (s1, s2, b1, b2) = race.await.unwrap();
        let mut statuses = [s1, s2];
        statuses.sort();
        assert_eq!(statuses, [200, 409], "{b1} {b2}");
        let loser = if s1 == 409 { b1 } else { b2 };
        assert_eq!(loser["code"], "already_retried");
    }
    // Each task is back exactly once, and the DLQ is empty.
    let tasks = all_tasks(&mut conn).await;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (_, _, fields) in &tasks {
        *counts.entry(fields["id"].clone()).or_default() += 1;
    }
    assert_eq!(counts.len(), 50);
    assert!(counts.values().all(|c| *c == 1), "{counts:?}");
    assert_eq!(xlen(&mut conn, "cortex:tasks:dlq").await, 0);
}

#[tokio::test]
async fn delete_one_then_again_is_409_and_unknown_is_404() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let addr = relay.addr();
    let mut conn = redis.connection().await;
    let keep = add_letter(
        &mut conn,
        &letter("keep", "pink", "harold", "high", "x", "{}"),
    )
    .await;
    let gone = add_letter(
        &mut conn,
        &letter("gone", "pink", "harold", "high", "x", "{}"),
    )
    .await;
    let (status, body) = delete(addr, &gone).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"dlq_id": gone, "deleted": true}));
    let (status, body) = delete(addr, &gone).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("already_deleted"))
    );
    let (status, body) = retry(addr, &gone, None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("already_deleted"))
    );
    let (status, body) = api(addr, "DELETE", "/api/v1/messaging/dlq/9-9", None).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    let left: Vec<String> = entries(&mut conn, "cortex:tasks:dlq")
        .await
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(left, [keep]);
    assert!(
        all_tasks(&mut conn).await.is_empty(),
        "a delete republishes nothing"
    );
}

#[tokio::test]
async fn bulk_retry_of_1000_letters_leaves_each_in_exactly_one_place() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let addr = relay.addr();
    let mut conn = redis.connection().await;
    // 1,000 letters for pink, 200 for harold (not selected), 5 that cannot be retried.
    let mut letters: Vec<_> = (0..1000)
        .map(|n| {
            letter(
                &format!("p-{n}"),
                "pink",
                "ops",
                ["high", "low"][n % 2],
                "timeout",
                &json!({"n": n}).to_string(),
            )
        })
        .collect();
    letters.extend((0..200).map(|n| {
        letter(
            &format!("h-{n}"),
            "harold",
            "ops",
            "normal",
            "timeout",
            "{}",
        )
    }));
    letters.extend((0..5).map(|n| {
        letter(
            &format!("bad-{n}"),
            "pink",
            "ops",
            "urgent",
            "timeout",
            "{}",
        )
    }));
    add_letters(&mut conn, &letters).await;

    let (status, result) = api(
        addr,
        "POST",
        "/api/v1/messaging/dlq/retry",
        Some(json!({"filter": {"agent": "pink"}})),
    )
    .await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["matched"], 1005);
    assert_eq!(result["acted"], 1000);
    assert_eq!(result["gone"], 0);
    assert_eq!(result["failed"], 5);
    assert_eq!(result["failures"].as_array().unwrap().len(), 5);
    assert_eq!(result["failures"][0]["code"], "not_retryable");

    // Every pink task is in its priority stream exactly once, and no longer a letter;
    // harold's letters and the 5 unretryable ones are still letters.
    let tasks = all_tasks(&mut conn).await;
    let mut seen = BTreeSet::new();
    for (stream, _, fields) in &tasks {
        assert!(seen.insert(fields["id"].clone()), "{} twice", fields["id"]);
        assert_eq!(stream, &format!("cortex:tasks:{}", fields["priority"]));
        assert_eq!(fields["retry_count"], "1");
        assert_eq!(fields["edited"], "false");
    }
    assert_eq!(seen, (0..1000).map(|n| format!("p-{n}")).collect());
    let left: BTreeSet<String> = entries(&mut conn, "cortex:tasks:dlq")
        .await
        .into_iter()
        .map(|(_, f)| f["original_id"].clone())
        .collect();
    let mut expected: BTreeSet<String> = (0..200).map(|n| format!("h-{n}")).collect();
    expected.extend((0..5).map(|n| format!("bad-{n}")));
    assert_eq!(left, expected);

    // By ids, at a chosen priority, with some already gone and a duplicate.
    let harold: Vec<String> = list_all(addr, "agent=harold", 1000).await;
    let mut ids: Vec<serde_json::Value> = harold[..10].iter().map(|i| json!(i)).collect();
    ids.push(json!(harold[0]));
    ids.push(json!("1-1"));
    let (status, result) = api(
        addr,
        "POST",
        "/api/v1/messaging/dlq/retry",
        Some(json!({"ids": ids, "priority": "critical"})),
    )
    .await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(
        (
            result["matched"].as_u64(),
            result["acted"].as_u64(),
            result["gone"].as_u64()
        ),
        (Some(11), Some(10), Some(1))
    );
    assert_eq!(xlen(&mut conn, "cortex:tasks:critical").await, 10);

    // Bulk delete by filter; then a filter matching nothing.
    let (status, result) = api(
        addr,
        "POST",
        "/api/v1/messaging/dlq/delete",
        Some(json!({"filter": {"agent": "harold"}})),
    )
    .await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(
        (result["matched"].as_u64(), result["acted"].as_u64()),
        (Some(190), Some(190))
    );
    let (status, result) = api(
        addr,
        "POST",
        "/api/v1/messaging/dlq/delete",
        Some(json!({"filter": {"error": "no such error"}})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(result["matched"], 0);
    assert_eq!(xlen(&mut conn, "cortex:tasks:dlq").await, 5);
    // By ids, including one already deleted.
    let bad: Vec<String> = list_all(addr, "", 100).await;
    let (status, result) = api(
        addr,
        "POST",
        "/api/v1/messaging/dlq/delete",
        Some(json!({"ids": [bad[0], bad[1], harold[50]]})),
    )
    .await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(
        (result["acted"].as_u64(), result["gone"].as_u64()),
        (Some(2), Some(1))
    );

    for bad in [
        json!({}),
        json!({"ids": ["x"]}),
        json!({"filter": {"agnet": "x"}}),
        json!({"ids": [], "filter": {}}),
    ] {
        let (status, body) = api(
            addr,
            "POST",
            "/api/v1/messaging/dlq/retry",
            Some(bad.clone()),
        )
        .await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
}

#[tokio::test]
async fn stats_count_by_error_agent_and_priority() {
    let redis = RedisServer::start();
    let relay = Relay::start_with(&redis.url(), "127.0.0.1:0", &["--dlq-warn-length", "4"]);
    let addr = relay.addr();
    let mut conn = redis.connection().await;
    let empty = get_ok(addr, "/api/v1/messaging/dlq/stats").await;
    assert_eq!(empty["length"], 0);
    assert_eq!(empty["oldest_id"], serde_json::Value::Null);
    assert_eq!(empty["over_warn_length"], false);

    let oldest = add_letter(
        &mut conn,
        &letter("a", "pink", "x", "high", "timeout", "{}"),
    )
    .await;
    add_letter(&mut conn, &letter("b", "pink", "x", "low", "timeout", "{}")).await;
    add_letter(&mut conn, &letter("c", "harold", "x", "low", "crash", "{}")).await;
    add_letter(&mut conn, &letter("d", "", "x", "low", "timeout", "{}")).await;
    let newest = add_letter(&mut conn, &letter("e", "pink", "x", "high", "crash", "{}")).await;
    let stats = get_ok(addr, "/api/v1/messaging/dlq/stats").await;
    assert_eq!(stats["length"], 5);
    assert_eq!(stats["oldest_id"], oldest);
    assert_eq!(stats["newest_id"], newest);
    assert!(stats["oldest_age_ms"].as_u64().unwrap() < 60_000);
    assert_eq!(
        stats["by_error"],
        json!([{"error": "timeout", "count": 3}, {"error": "crash", "count": 2}])
    );
    assert_eq!(stats["by_agent"], json!({"pink": 3, "harold": 1, "*": 1}));
    assert_eq!(stats["by_priority"], json!({"high": 2, "low": 3}));
    assert_eq!(stats["warn_length"], 4);
    assert_eq!(stats["over_warn_length"], true);
}

/// Arrays where objects belong (serde's derive took their items as the fields in
/// order: `{"filter":[]}` deleted the whole DLQ) are 400 `invalid_body`, and nothing in
/// Redis changes: every letter is still there, nothing retried, nothing published.
#[tokio::test]
async fn arrays_for_objects_are_refused_and_the_dlq_is_untouched() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let addr = relay.addr();
    let mut conn = redis.connection().await;
    let letters: Vec<_> = (0..5)
        .map(|n| {
            letter(
                &format!("task-{n}"),
                "pink",
                "harold",
                "low",
                "crashed",
                "{}",
            )
        })
        .collect();
    let ids = add_letters(&mut conn, &letters).await;
    let tasks_before = all_tasks(&mut conn).await.len();

    for (path, body) in [
        (
            "/api/v1/messaging/dlq/delete",
            r#"{"filter":[]}"#.to_owned(),
        ),
        (
            "/api/v1/messaging/dlq/delete",
            r#"{"filter":["pink"]}"#.to_owned(),
        ),
        ("/api/v1/messaging/dlq/delete", r#"[null,{}]"#.to_owned()),
        ("/api/v1/messaging/dlq/retry", r#"{"filter":[]}"#.to_owned()),
        (
            "/api/v1/messaging/dlq/retry",
            format!(r#"[["{}"],null,"high"]"#, ids[0]),
        ),
        (
            &*format!("/api/v1/messaging/dlq/retry/{}", ids[1]),
            r#"["high"]"#.to_owned(),
        ),
        ("/api/v1/tasks", r#"["pink","high","coding"]"#.to_owned()),
        (
            "/api/v1/tasks",
            r#"["pink","high","coding",{"x":1},"operator"]"#.to_owned(),
        ),
    ] {
        let (status, answer) = cortex_e2e::http::request(addr, "POST", path, Some(&body)).await;
        assert_eq!(status, 400, "POST {path} {body}: {answer}");
        let answer: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(
            answer["code"], "invalid_body",
            "POST {path} {body}: {answer}"
        );
    }

    let mut left = list_all(addr, "", 100).await;
    left.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(left, want, "every letter is still in the DLQ");
    assert_eq!(
        all_tasks(&mut conn).await.len(),
        tasks_before,
        "nothing published"
    );
    // The same requests as objects still act.
    let (status, answer) = api(
        addr,
        "POST",
        "/api/v1/messaging/dlq/delete",
        Some(json!({"ids": [ids[4]]})),
    )
    .await;
    assert_eq!(
        (status, answer["acted"].as_u64()),
        (200, Some(1)),
        "{answer}"
    );
}
