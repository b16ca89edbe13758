//! `GET /api/v1/streams/{stream}/entries`: a stream's entries by time range.

use super::{get, ApiError};
use crate::route::encode;
use cortex_shared::rest::{ReplayEntry, ReplayPage};

/// Entries per request (the API's most).
pub const PAGE: usize = 1000;

/// The path and query of one page: the time range `since_ms..=until_ms` (unix ms,
/// `until_ms` `None`: up to the newest), from the start or, for the next pages, from
/// `start` (the previous page's `next_start`) to the range's end.
pub fn page_path(
    stream: &str,
    since_ms: u64,
    until_ms: Option<u64>,
    start: Option<&str>,
) -> String {
    let mut query = match start {
        None => {
            let mut q = format!("since_ms={since_ms}");
            if let Some(until) = until_ms {
                q.push_str(&format!("&until_ms={until}"));
            }
            q
        }
        // An id range from the page's start, ending where the time range ends (the
        // last possible id of its last millisecond).
        Some(start) => {
            let mut q = format!("start={}", encode(start));
            if let Some(until) = until_ms {
                q.push_str(&format!("&end={until}-{}", u64::MAX));
            }
            q
        }
    };
    query.push_str(&format!("&count={PAGE}"));
    format!("/api/v1/streams/{}/entries?{query}", encode(stream))
}

/// What a range read gave: the entries oldest first, and whether the stream holds more
/// in the range than `max_pages` pages.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RangeRead {
    /// The entries read, oldest first.
    pub entries: Vec<ReplayEntry>,
    /// The range holds more than was read.
    pub truncated: bool,
}

/// Reads `stream`'s entries in the time range, following pages, at most `max_pages`.
pub async fn range(
    stream: &str,
    since_ms: u64,
    until_ms: Option<u64>,
    max_pages: usize,
) -> Result<RangeRead, ApiError> {
    let mut read = RangeRead::default();
    let mut start: Option<String> = None;
    for _ in 0..max_pages {
        let page: ReplayPage =
            get(&page_path(stream, since_ms, until_ms, start.as_deref())).await?;
        read.entries.extend(page.entries);
        match page.next_start {
            Some(next) => start = Some(next),
            None => return Ok(read),
        }
    }
    read.truncated = true;
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_a_time_range() {
        assert_eq!(
            page_path("cortex:tasks:high", 5, Some(9), None),
            "/api/v1/streams/cortex%3Atasks%3Ahigh/entries?since_ms=5&until_ms=9&count=1000"
        );
        assert_eq!(
            page_path("cortex:tasks:low", 5, None, None),
            "/api/v1/streams/cortex%3Atasks%3Alow/entries?since_ms=5&count=1000"
        );
        assert_eq!(
            page_path("cortex:tasks:low", 5, Some(9), Some("7-1")),
            "/api/v1/streams/cortex%3Atasks%3Alow/entries?start=7-1&end=9-18446744073709551615&count=1000"
        );
    }
}
