//! Property tests of the Redis entry decoders (tasks, heartbeats, dead letters) at the
//! boundary: any bytes as field names and values, missing and repeated fields, large
//! values. Never a panic; what decodes re-encodes to the same; what is refused names
//! the field and the documented problem; a dead letter alters nothing it keeps.

use cortex_shared::entry::Problem;
use cortex_shared::{DeadLetter, DecodeError, Heartbeat, JsonObject, Priority, TaskMessage};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;

/// Field names: mostly the ones the decoders know (so that collisions, repeats and
/// missing fields are common), else any bytes.
fn name(known: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => proptest::sample::select(known).prop_map(|k| k.as_bytes().to_vec()),
        1 => vec(any::<u8>(), 0..12),
        1 => Just(vec![0xff, 0xfe]),
    ]
}

/// Values: text the decoders might accept, or any bytes.
fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"".to_vec()),
        Just(b"{}".to_vec()),
        Just(br#"{"a":1}"#.to_vec()),
        Just(b"high".to_vec()),
        Just(b"1704556800".to_vec()),
        "[a-z]{1,8}".prop_map(String::into_bytes),
        vec(any::<u8>(), 0..24),
    ]
}

fn pairs(known: &'static [&'static str]) -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>)>> {
    vec((name(known), value()), 0..16)
}

fn as_refs(pairs: &[(Vec<u8>, Vec<u8>)]) -> impl Iterator<Item = (&[u8], &[u8])> {
    pairs.iter().map(|(k, v)| (k.as_slice(), v.as_slice()))
}

fn encoded(fields: &[(&'static str, String)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    fields
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
}

/// The value of `field` a decoder reads: the last one given.
fn last<'a>(pairs: &'a [(Vec<u8>, Vec<u8>)], field: &str) -> Option<&'a [u8]> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == field.as_bytes())
        .map(|(_, v)| v.as_slice())
}

/// A refusal is one of the documented ones, for one of the decoder's fields, and true
/// of the value that field has.
fn assert_documented(
    err: &DecodeError,
    pairs: &[(Vec<u8>, Vec<u8>)],
    known: &[&'static str],
) -> Result<(), TestCaseError> {
    prop_assert!(known.contains(&err.field), "{err}");
    let value = last(pairs, err.field);
    match &err.problem {
        Problem::Missing => prop_assert!(value.is_none(), "{err}"),
        Problem::NotUtf8 => prop_assert!(std::str::from_utf8(value.unwrap()).is_err()),
        Problem::Empty => prop_assert_eq!(value, Some(&b""[..])),
        Problem::NotInteger(text) | Problem::UnknownPriority(text) => {
            prop_assert_eq!(value, Some(text.as_bytes()));
        }
        Problem::NotJson(_) | Problem::NotObject(_) => {
            prop_assert!(value.is_some_and(|v| std::str::from_utf8(v).is_ok()));
        }
        Problem::NotBase64 => prop_assert!(err.field.ends_with("_base64")),
    }
    prop_assert!(!err.to_string().is_empty());
    Ok(())
}

fn json_object() -> impl Strategy<Value = JsonObject> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<String>().prop_map(serde_json::Value::from),
    ];
    btree_map(any::<String>(), leaf, 0..6).prop_map(|m| m.into_iter().collect())
}

fn priority() -> impl Strategy<Value = Priority> {
    proptest::sample::select(Priority::ALL.to_vec())
}

prop_compose! {
    fn task()(
        id in any::<String>().prop_filter("an id", |s| !s.is_empty()),
        from in any::<String>(),
        to in any::<String>(),
        priority in priority(),
        task_type in any::<String>(),
        payload in json_object(),
        created in any::<i64>(),
        // A trace field is written only when set, and an empty one reads as none.
        parent_id in proptest::option::of(".+"),
        correlation_id in proptest::option::of(".+"),
    ) -> TaskMessage {
        TaskMessage { id, from, to, priority, task_type, payload, created, parent_id, correlation_id }
    }
}

prop_compose! {
    fn heartbeat()(agent in ".+", time in any::<i64>(), status in json_object()) -> Heartbeat {
        Heartbeat { agent, time, status }
    }
}

prop_compose! {
    fn letter()(
        texts in vec(any::<String>(), 8),
        retry_count in any::<u32>(),
        dead_at in any::<i64>(),
        original_stream in proptest::option::of(any::<String>()),
        original_entry_id in proptest::option::of(any::<String>()),
        missing in proptest::sample::subsequence(TaskMessage::FIELDS.to_vec(), 0..=7),
        bytes in btree_map(
            proptest::sample::select(TaskMessage::FIELDS.to_vec()),
            vec(any::<u8>(), 0..32),
            0..4,
        ),
        failed_agent in proptest::option::of(".+"),
        failed_consumer in proptest::option::of(".+"),
        attempts in vec((any::<u64>(), any::<String>(), any::<String>()), 0..3),
        original_parent_id in proptest::option::of(".+"),
        original_correlation_id in proptest::option::of(".+"),
    ) -> DeadLetter {
        DeadLetter {
            original_id: texts[0].clone(),
            original_from: texts[1].clone(),
            original_to: texts[2].clone(),
            original_priority: texts[3].clone(),
            original_type: texts[4].clone(),
            original_payload: texts[5].clone(),
            original_created: texts[6].clone(),
            error: texts[7].clone(),
            retry_count,
            dead_at,
            original_stream,
            original_entry_id,
            original_missing: missing.into_iter().map(str::to_owned).collect(),
            original_bytes: bytes.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            failed_agent,
            failed_consumer,
            attempts: attempts
                .into_iter()
                .map(|(at_ms, consumer, error)| cortex_shared::Attempt { at_ms, consumer, error })
                .collect(),
            original_parent_id,
            original_correlation_id,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_task_decodes_to_what_was_encoded_whatever_else_the_entry_holds(
        task in task(),
        before in pairs(&TaskMessage::FIELDS),
        after in vec((vec(any::<u8>(), 0..12), value()), 0..6),
    ) {
        // Anything may come first (the last of a repeated field wins), and fields the
        // decoder does not know may follow, whatever bytes they hold.
        let after: Vec<_> = after
            .into_iter()
            .filter(|(k, _)| !TaskMessage::FIELDS.iter().any(|f| f.as_bytes() == k))
            .collect();
        let mut fields = before;
        fields.extend(encoded(&task.to_fields()));
        fields.extend(after);
        prop_assert_eq!(TaskMessage::from_raw_fields(as_refs(&fields)).unwrap(), task.clone());
        let json = serde_json::to_value(&task).unwrap();
        prop_assert_eq!(serde_json::from_value::<TaskMessage>(json).unwrap(), task);
    }

    #[test]
    fn any_task_entry_decodes_or_is_refused_with_the_documented_error(
        fields in pairs(&TaskMessage::FIELDS),
    ) {
        match TaskMessage::from_raw_fields(as_refs(&fields)) {
            Ok(task) => {
                let again = TaskMessage::from_raw_fields(as_refs(&encoded(&task.to_fields())));
                prop_assert_eq!(again.unwrap(), task);
            }
            Err(err) => assert_documented(&err, &fields, &TaskMessage::FIELDS)?,
        }
    }

    #[test]
    fn a_heartbeat_round_trips_and_any_entry_is_decoded_or_refused_as_documented(
        hb in heartbeat(),
        fields in pairs(&Heartbeat::FIELDS),
    ) {
        let encoded_hb = encoded(&hb.to_fields());
        prop_assert_eq!(Heartbeat::from_raw_fields(as_refs(&encoded_hb)).unwrap(), hb);
        match Heartbeat::from_raw_fields(as_refs(&fields)) {
            Ok(hb) => {
                let again = Heartbeat::from_raw_fields(as_refs(&encoded(&hb.to_fields())));
                prop_assert_eq!(again.unwrap(), hb);
            }
            Err(err) => assert_documented(&err, &fields, &Heartbeat::FIELDS)?,
        }
    }

    #[test]
    fn a_dead_letter_round_trips_through_redis_fields_and_json(letter in letter()) {
        let fields = letter.to_fields();
        let text = fields.iter().map(|(k, v)| (*k, v.as_str()));
        prop_assert_eq!(&DeadLetter::from_fields(text).unwrap(), &letter);
        let raw = encoded(&fields);
        prop_assert_eq!(&DeadLetter::from_raw_fields(as_refs(&raw)).unwrap(), &letter);
        prop_assert_eq!(
            &DeadLetter::from_raw_fields_leniently(as_refs(&raw), 0),
            &letter
        );
        let json = serde_json::to_value(&letter).unwrap();
        prop_assert_eq!(serde_json::from_value::<DeadLetter>(json).unwrap(), letter);
    }

    #[test]
    fn any_dlq_entry_is_shown_and_strictly_decoded_or_refused_as_documented(
        fields in pairs(&DeadLetter::FIELDS),
    ) {
        let shown = DeadLetter::from_raw_fields_leniently(as_refs(&fields), 5);
        match DeadLetter::from_raw_fields(as_refs(&fields)) {
            Ok(letter) => {
                prop_assert_eq!(&shown, &letter);
                let again = DeadLetter::from_raw_fields(as_refs(&encoded(&letter.to_fields())));
                prop_assert_eq!(again.unwrap(), letter);
            }
            Err(err) => assert_documented(&err, &fields, &DeadLetter::FIELDS)?,
        }
        // What the shown letter's task text cannot say is said beside it.
        for field in TaskMessage::FIELDS {
            let raw = last(&fields, &format!("original_{field}"));
            if raw.is_some_and(|v| std::str::from_utf8(v).is_err()) {
                prop_assert!(shown.original_task().is_err());
                prop_assert!(shown.original_bytes.contains_key(field)
                    || shown.original_missing.iter().any(|m| m == field));
            }
        }
    }

    #[test]
    fn the_letter_of_any_task_entry_alters_nothing(fields in pairs(&TaskMessage::FIELDS)) {
        let letter = DeadLetter::default().with_original_fields(as_refs(&fields));
        // Its task decodes exactly when the entry's does, and then to the same task.
        match (letter.original_task(), TaskMessage::from_raw_fields(as_refs(&fields))) {
            (Ok(from_letter), Ok(from_entry)) => prop_assert_eq!(from_letter, from_entry),
            (Err(_), Err(_)) => {}
            (a, b) => prop_assert!(false, "letter {a:?}, entry {b:?}"),
        }
        for field in TaskMessage::FIELDS {
            let value = last(&fields, field);
            prop_assert_eq!(letter.original_missing.iter().any(|m| m == field), value.is_none());
            let kept = letter.original_bytes.get(field).map(Vec::as_slice);
            match value.map(std::str::from_utf8) {
                Some(Err(_)) => prop_assert_eq!(kept, value),
                _ => prop_assert_eq!(kept, None),
            }
        }
        // And it survives the DLQ as it is.
        let raw = encoded(&letter.to_fields());
        prop_assert_eq!(DeadLetter::from_raw_fields(as_refs(&raw)).unwrap(), letter);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn large_values_decode_or_are_refused_without_harm(
        size in 64usize * 1024..512 * 1024,
        byte in any::<u8>(),
    ) {
        let big = vec![byte; size];
        let payload = format!(r#"{{"blob":"{}"}}"#, "x".repeat(size));
        let fields: Vec<(Vec<u8>, Vec<u8>)> = [
            ("id", b"t1".to_vec()),
            ("from", b"harold".to_vec()),
            ("to", big.clone()),
            ("priority", b"low".to_vec()),
            ("type", b"coding".to_vec()),
            ("payload", payload.into_bytes()),
            ("created", b"1".to_vec()),
        ]
        .into_iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v))
        .chain([(big.clone(), big.clone())])
        .collect();
        match TaskMessage::from_raw_fields(as_refs(&fields)) {
            Ok(task) => {
                prop_assert_eq!(task.to.len(), size);
                prop_assert_eq!(task.payload["blob"].as_str().map(str::len), Some(size));
            }
            Err(err) => prop_assert_eq!(err, DecodeError::new("to", Problem::NotUtf8)),
        }
        let letter = DeadLetter::default().with_original_fields(as_refs(&fields));
        let raw = encoded(&letter.to_fields());
        prop_assert_eq!(DeadLetter::from_raw_fields(as_refs(&raw)).unwrap(), letter);
    }
}
