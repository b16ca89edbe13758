//! Text for humans: times, durations and JSON as the dashboard shows them.

use cortex_shared::JsonObject;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// Unix seconds as `2024-01-06 16:00:00 UTC` (`?` outside the years 1 to 9999).
pub fn human_time(unix: i64) -> String {
    civil(
        unix,
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC"),
    )
}

/// Unix seconds as an RFC 3339 instant, `2024-01-06T16:00:00Z` (for `<time datetime>`).
pub fn rfc3339(unix: i64) -> String {
    civil(
        unix,
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z"),
    )
}

/// `unix` in UTC, as `format` lays it out.
fn civil(unix: i64, format: &[BorrowedFormatItem<'_>]) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(format).ok())
        .unwrap_or_else(|| "?".into())
}

/// Unix milliseconds as `2024-01-06T16:00:00Z` (whole seconds; the URL's and the
/// history form's notation).
pub fn utc_ms(unix_ms: u64) -> String {
    rfc3339((unix_ms / 1000) as i64)
}

/// Parses a UTC time as the history form takes it: `2024-01-06 16:00`,
/// `2024-01-06 16:00:05`, `2024-01-06T16:00:05Z` (a trailing `Z` or ` UTC` is allowed),
/// a date alone (midnight), or unix milliseconds (digits only, 10 or more). Returns
/// unix milliseconds; `None` for anything else.
pub fn parse_utc_ms(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.len() >= 10 && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    let text = text
        .strip_suffix(" UTC")
        .or_else(|| text.strip_suffix('Z'))
        .unwrap_or(text);
    let (date, time) = match text.split_once(['T', ' ']) {
        Some((date, time)) => (date, time.trim()),
        None => (text, "00:00:00"),
    };
    let num = |s: &str, max: i64| -> Option<i64> {
        (!s.is_empty() && s.len() <= 4 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<i64>().ok())
            .flatten()
            .filter(|n| *n <= max)
    };
    let mut d = date.split('-');
    let (year, month, day) = (
        num(d.next()?, 9999)?,
        num(d.next()?, 12)?,
        num(d.next()?, 31)?,
    );
    let mut t = time.split(':');
    let (hour, minute) = (num(t.next()?, 23)?, num(t.next()?, 59)?);
    let second = match t.next() {
        Some(s) => num(s, 59)?,
        None => 0,
    };
    if d.next().is_some() || t.next().is_some() {
        return None;
    }
    // Refuses a day past the month's end (say February 30).
    let date = Date::from_calendar_date(
        i32::try_from(year).ok()?,
        Month::try_from(u8::try_from(month).ok()?).ok()?,
        u8::try_from(day).ok()?,
    )
    .ok()?;
    let time = Time::from_hms(hour as u8, minute as u8, second as u8).ok()?;
    let secs = PrimitiveDateTime::new(date, time)
        .assume_utc()
        .unix_timestamp();
    u64::try_from(secs).ok().map(|s| s * 1000)
}

/// A duration in milliseconds in human units, the largest two that apply: `340 ms`,
/// `1.5 s` (a tenth under 10 s), `12 s`, `4 min 23 s`, `2 h 5 min`, `3 d 4 h`. The
/// one way the dashboard writes a duration.
pub fn duration_ms(ms: u64) -> String {
    const S: u64 = 1000;
    const MIN: u64 = 60 * S;
    const H: u64 = 60 * MIN;
    const D: u64 = 24 * H;
    let pair = |big: u64, big_unit: &str, small: u64, small_unit: &str| {
        if small == 0 {
            format!("{big} {big_unit}")
        } else {
            format!("{big} {big_unit} {small} {small_unit}")
        }
    };
    match ms {
        ms if ms < S => format!("{ms} ms"),
        ms if ms < 10 * S => {
            // Tenths, rounded down so that 9999 ms stays under 10 s.
            let tenths = ms / 100;
            if tenths % 10 == 0 {
                format!("{} s", tenths / 10)
            } else {
                format!("{}.{} s", tenths / 10, tenths % 10)
            }
        }
        ms if ms < MIN => format!("{} s", ms / S),
        ms if ms < H => pair(ms / MIN, "min", ms % MIN / S, "s"),
        ms if ms < D => pair(ms / H, "h", ms % H / MIN, "min"),
        ms => pair(ms / D, "d", ms % D / H, "h"),
    }
}

/// A duration of fractional milliseconds (latency percentiles): under 10 ms with a
/// tenth (`0.4 ms`, `2.5 ms`), else as [`duration_ms`]. Negative or not a number: `?`.
pub fn duration_ms_f64(ms: f64) -> String {
    if !ms.is_finite() || ms < 0.0 {
        return "?".into();
    }
    if ms < 10.0 {
        return format!("{ms:.1} ms");
    }
    duration_ms(ms.round() as u64)
}

/// How long ago `then_ms` was at `now_ms` (unix ms) as [`duration_ms`]; a time in the
/// future (clocks apart) counts as 0.
pub fn age_ms(now_ms: u64, then_ms: u64) -> String {
    duration_ms(now_ms.saturating_sub(then_ms))
}

/// The time in unix milliseconds of a stream entry id (`1704556800000-0`).
pub fn entry_id_ms(entry_id: &str) -> Option<u64> {
    entry_id
        .split_once('-')
        .map_or(entry_id, |(ms, _)| ms)
        .parse()
        .ok()
}

/// A JSON object indented for reading.
pub fn pretty_json(object: &JsonObject) -> String {
    // A map of JSON values always serializes.
    serde_json::to_string_pretty(object).expect("JSON values serialize")
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
    fn parses_utc_times_and_prints_them_back() {
        let at = 1_704_556_800_000;
        for text in [
            "2024-01-06 16:00",
            "2024-01-06 16:00:00",
            "2024-01-06T16:00:00Z",
            " 2024-01-06 16:00:00 UTC ",
            "1704556800000",
        ] {
            assert_eq!(parse_utc_ms(text), Some(at), "{text}");
        }
        assert_eq!(parse_utc_ms("2024-01-06"), Some(1_704_499_200_000));
        assert_eq!(parse_utc_ms("2000-02-29 23:59:59"), Some(951_868_799_000));
        assert_eq!(utc_ms(at + 999), "2024-01-06T16:00:00Z");
        assert_eq!(parse_utc_ms(&utc_ms(at)), Some(at));
        for bad in [
            "",
            "yesterday",
            "2024-13-01 00:00",
            "2023-02-29 00:00",
            "2024-01-06 24:00",
            "2024-01-06 16:00:00:00",
            "12345",
            "1969-12-31 00:00",
        ] {
            assert_eq!(parse_utc_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn durations_in_human_units() {
        for (ms, text) in [
            (0, "0 ms"),
            (340, "340 ms"),
            (999, "999 ms"),
            (1000, "1 s"),
            (1540, "1.5 s"),
            (9999, "9.9 s"),
            (12_000, "12 s"),
            (59_999, "59 s"),
            (60_000, "1 min"),
            (263_324, "4 min 23 s"),
            (3_599_999, "59 min 59 s"),
            (3_600_000, "1 h"),
            (7_500_000, "2 h 5 min"),
            (86_400_000, "1 d"),
            (3 * 86_400_000 + 4 * 3_600_000 + 59_000, "3 d 4 h"),
            (u64::MAX, "213503982334 d 14 h"),
        ] {
            assert_eq!(duration_ms(ms), text, "{ms}");
        }
        assert_eq!(duration_ms_f64(0.44), "0.4 ms");
        assert_eq!(duration_ms_f64(9.94), "9.9 ms");
        assert_eq!(duration_ms_f64(340.4), "340 ms");
        assert_eq!(duration_ms_f64(263_324.0), "4 min 23 s");
        assert_eq!(duration_ms_f64(f64::NAN), "?");
        assert_eq!(duration_ms_f64(-1.0), "?");
        assert_eq!(age_ms(12_000, 0), "12 s");
        assert_eq!(age_ms(0, 12_000), "0 ms", "clocks apart");
    }

    #[test]
    fn entry_ids_carry_their_time() {
        assert_eq!(entry_id_ms("1704556800000-3"), Some(1_704_556_800_000));
        assert_eq!(entry_id_ms("1704556800000"), Some(1_704_556_800_000));
        assert_eq!(entry_id_ms("x-1"), None);
    }

    #[test]
    fn pretty_prints_objects() {
        let object = serde_json::json!({"a": 1}).as_object().unwrap().clone();
        assert_eq!(pretty_json(&object), "{\n  \"a\": 1\n}");
    }
}
