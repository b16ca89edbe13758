//! Text for humans: times and JSON as the dashboard shows them.

use cortex_shared::JsonObject;

/// Unix seconds as `2024-01-06 16:00:00 UTC`.
pub fn human_time(unix: i64) -> String {
    let (date, time) = civil(unix);
    format!("{date} {time} UTC")
}

/// Unix seconds as an RFC 3339 instant, `2024-01-06T16:00:00Z` (for `<time datetime>`).
pub fn rfc3339(unix: i64) -> String {
    let (date, time) = civil(unix);
    format!("{date}T{time}Z")
}

/// A JSON object indented for reading.
pub fn pretty_json(object: &JsonObject) -> String {
    // A map of JSON values always serializes.
    serde_json::to_string_pretty(object).expect("JSON values serialize")
}

/// `("YYYY-MM-DD", "hh:mm:ss")` in UTC, by Howard Hinnant's `civil_from_days`
/// algorithm (proleptic Gregorian calendar).
fn civil(unix: i64) -> (String, String) {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        format!("{year:04}-{month:02}-{day:02}"),
        format!(
            "{:02}:{:02}:{:02}",
            secs / 3600,
            secs % 3600 / 60,
            secs % 60
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_unix_seconds_in_utc() {
        assert_eq!(human_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(human_time(1_704_556_800), "2024-01-06 16:00:00 UTC");
        assert_eq!(rfc3339(951_782_400 + 86_399), "2000-02-29T23:59:59Z");
        assert_eq!(human_time(-1), "1969-12-31 23:59:59 UTC");
    }

    #[test]
    fn pretty_prints_objects() {
        let object = serde_json::json!({"a": 1}).as_object().unwrap().clone();
        assert_eq!(pretty_json(&object), "{\n  \"a\": 1\n}");
    }
}
