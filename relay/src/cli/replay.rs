//! `cortex-relay replay`: print a range of a stream, oldest first (Redis `XRANGE`, or
//! `XREVRANGE` for `--last`), each entry decoded with cortex-shared; entries that do
//! not decode are shown raw with the reason. Long ranges are read in pages.

use super::entry::Entry;
use super::output::Output;
use super::{redis_connection, CliError, OutputArgs, RedisArgs};
use crate::store::reply::Entry as RawEntry;
use crate::store::streams::{xrange, xrevrange};
use cortex_shared::{EntryId, Priority, DLQ_STREAM, HEARTBEAT_STREAM};
use redis::aio::MultiplexedConnection;
use redis::streams::StreamId;

/// Entries read per round trip.
const PAGE: u64 = 1000;

/// `replay STREAM [--start ID] [--end ID] [--count N | --last N]`
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// The stream: its key (`cortex:tasks:high`) or a short name: `critical`, `high`,
    /// `normal`, `low`, `heartbeats`, `dlq`.
    #[arg(value_name = "STREAM", value_parser = parse_stream)]
    pub stream: String,
    /// First entry id of the range (inclusive; `(ID` exclusive). A millisecond
    /// timestamp alone is accepted. Default `-`: the beginning.
    #[arg(long, value_name = "ID", default_value = "-", value_parser = parse_bound)]
    pub start: String,
    /// Last entry id of the range (inclusive; `(ID` exclusive). Default `+`: the end.
    #[arg(long, value_name = "ID", default_value = "+", value_parser = parse_bound)]
    pub end: String,
    /// At most N entries, from the start of the range.
    #[arg(long, value_name = "N", conflicts_with = "last",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// The last N entries of the range (still printed oldest first).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub last: Option<u64>,
    /// Which Redis.
    #[command(flatten)]
    pub redis: RedisArgs,
    /// Human or JSON output.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Prints the range: one line per entry (see [`Entry::human`]), or one JSON object
/// per entry (see [`super::entry`]).
pub async fn run(args: ReplayArgs, redis_url: &str) -> Result<(), CliError> {
    let out = Output::new(args.output.json);
    let mut conn = redis_connection(redis_url).await?;
    let shown = match args.last {
        Some(last) => {
            let entries = read_last(&mut conn, &args, last)
                .await
                .map_err(|e| CliError::redis(redis_url, e))?;
            for entry in &entries {
                out.item(|| entry.human(), &entry.json())?;
            }
            entries.len()
        }
        None => {
            let mut shown = 0;
            let mut start = args.start.clone();
            let mut left = args.count.unwrap_or(u64::MAX);
            while left > 0 {
                let page = left.min(PAGE);
                let reply = stream_ids(
                    xrange(&mut conn, &args.stream, &start, &args.end, Some(page))
                        .await
                        .map_err(|e| CliError::redis(redis_url, e))?,
                );
                for id in &reply {
                    let entry = Entry::decode(&args.stream, id);
                    out.item(|| entry.human(), &entry.json())?;
                }
                shown += reply.len();
                left -= reply.len() as u64;
                match reply.last().and_then(|id| id.id.parse::<EntryId>().ok()) {
                    Some(last) if (reply.len() as u64) == page => start = after(last),
                    _ => break,
                }
            }
            shown
        }
    };
    if shown == 0 && !out.is_json() {
        out.note(&format!("no entries in {} in that range", args.stream));
    }
    Ok(())
}

/// The entries of a range as maps, for decoding (walked as Redis sent them: a field
/// whose name is not UTF-8 fails no read; see [`crate::store::reply`]).
fn stream_ids(entries: Vec<RawEntry>) -> Vec<StreamId> {
    entries.into_iter().map(RawEntry::into_stream_id).collect()
}

/// The last `n` entries of the range, oldest first.
async fn read_last(
    conn: &mut MultiplexedConnection,
    args: &ReplayArgs,
    n: u64,
) -> redis::RedisResult<Vec<Entry>> {
    let mut entries = Vec::new();
    let mut end = args.end.clone();
    while (entries.len() as u64) < n {
        let page = (n - entries.len() as u64).min(PAGE);
        let reply = stream_ids(xrevrange(conn, &args.stream, &end, &args.start, page).await?);
        entries.extend(reply.iter().map(|id| Entry::decode(&args.stream, id)));
        match reply.last().and_then(|id| id.id.parse::<EntryId>().ok()) {
            Some(last) if (reply.len() as u64) == page => match before(last) {
                Some(previous) => end = previous,
                None => break,
            },
            _ => break,
        }
    }
    entries.reverse();
    Ok(entries)
}

/// The smallest entry id after `id`.
fn after(id: EntryId) -> String {
    match id.seq.checked_add(1) {
        Some(seq) => EntryId::new(id.ms, seq).to_string(),
        None => EntryId::new(id.ms + 1, 0).to_string(),
    }
}

/// The largest entry id before `id`, if any.
fn before(id: EntryId) -> Option<String> {
    if id.seq > 0 {
        Some(EntryId::new(id.ms, id.seq - 1).to_string())
    } else if id.ms > 0 {
        Some(EntryId::new(id.ms - 1, u64::MAX).to_string())
    } else {
        None
    }
}

/// A stream key, or a short name for one of the task streams.
pub(crate) fn parse_stream(text: &str) -> Result<String, String> {
    let key = match text {
        "heartbeats" => HEARTBEAT_STREAM.to_owned(),
        "dlq" => DLQ_STREAM.to_owned(),
        "" => return Err("empty".into()),
        short => match Priority::parse(short) {
            Some(priority) => priority.stream().to_owned(),
            None => short.to_owned(),
        },
    };
    Ok(key)
}

/// `-`, `+`, or an entry id (or millisecond timestamp), optionally preceded by `(`.
fn parse_bound(text: &str) -> Result<String, String> {
    if text == "-" || text == "+" {
        return Ok(text.to_owned());
    }
    let id = text.strip_prefix('(').unwrap_or(text);
    id.parse::<EntryId>().map(|_| text.to_owned()).map_err(|_| {
        format!(
            "{text:?} is not a range bound (expected `-`, `+`, an entry id such as \
                 1704556800000-0 or a millisecond timestamp, optionally after `(`)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_stream_names_and_bounds() {
        assert_eq!(parse_stream("high").unwrap(), "cortex:tasks:high");
        assert_eq!(parse_stream("dlq").unwrap(), "cortex:tasks:dlq");
        assert_eq!(parse_stream("heartbeats").unwrap(), "cortex:heartbeats");
        assert_eq!(parse_stream("my:stream").unwrap(), "my:stream");
        for ok in ["-", "+", "17", "17-3", "(17-3"] {
            assert_eq!(parse_bound(ok).unwrap(), ok);
        }
        assert!(parse_bound("17-x").is_err());
        assert_eq!(after(EntryId::new(5, 1)), "5-2");
        assert_eq!(after(EntryId::new(5, u64::MAX)), "6-0");
        assert_eq!(
            before(EntryId::new(5, 0)).unwrap(),
            format!("4-{}", u64::MAX)
        );
        assert_eq!(before(EntryId::ZERO), None);
    }
}
