//! How much a consumer reads, and when: its credit, the top-up of a woken read with
//! more urgent entries, the entries held back until a sweep has read what is more
//! urgent. Pure functions of the consumer's counts and of what the reads returned;
//! [`super::run`] does the reading.
//!
//! The rules, and why:
//! - Reads never take more than the free credit (`prefetch` minus tasks in flight or
//!   held), so with a backlog a critical task is never stuck behind a batch of low
//!   ones.
//! - A busy consumer reads once a quarter of its prefetch is free (or nothing is in
//!   flight), in batches instead of one task per ack.
//! - Each round reads critical first, then high, normal, low (the sweep), and only
//!   blocks when all four are empty; the sweep is skipped while reads keep up.
//! - A read woken by one stream returns only that stream, so a burst written to
//!   several at once would go out less urgent first: its entries are topped up with
//!   the more urgent streams, and what is less urgent than a stream that may hold more
//!   is held until the sweep has read it.

use super::rank;
use cortex_shared::Priority;
use std::time::Duration;

/// What the credit depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Load {
    /// Tasks a consumer may have in flight.
    pub(super) prefetch: usize,
    /// Delivered, not yet acked.
    pub(super) in_flight: usize,
    /// Read and held back (see [`hold_back`]).
    pub(super) held: usize,
    /// Deliveries left (`None`: no limit).
    pub(super) remaining: Option<usize>,
}

/// How many entries may be read now: the prefetch less what is in flight or held, and
/// no more than the deliveries left less what is held.
pub(super) fn credit(load: Load) -> usize {
    let taken = load.in_flight + load.held;
    let credit = load.prefetch.saturating_sub(taken);
    load.remaining
        .map_or(credit, |left| credit.min(left.saturating_sub(load.held)))
}

/// Whether to read now: when a quarter of the prefetch is free, or nothing is in
/// flight (a client with three quarters of its prefetch to work on loses nothing by
/// waiting, and a busy consumer reads in batches instead of one task per ack).
pub(super) fn may_read(load: Load) -> bool {
    let credit = credit(load);
    let idle = load.in_flight == 0;
    // (Held entries with no credit left and nothing in flight: the sweep releases them
    // without reading.)
    (credit > 0 && (credit >= (load.prefetch / 4).max(1) || idle)) || (idle && load.held > 0)
}

/// How many entries a read of all four streams asks of each: a quarter of the credit,
/// so that it never takes more than the credit. Below four, the whole credit: the
/// sweep before it found all four empty, and a woken read returns one stream.
pub(super) fn share(credit: usize) -> usize {
    if credit >= 4 {
        credit / 4
    } else {
        credit
    }
}

/// Whether the sweep (a non-blocking read of each stream, most urgent first) can be
/// skipped: the last read kept up (took less than it could from each stream), so
/// everything waiting arrived since, a batch delivered most urgent first, and the
/// blocking read returns it at once, one round trip instead of five. (One script
/// reading all four in a round trip was tried: it saves the relay about as much as
/// Redis then spends turning each entry into Lua and back.)
pub(super) fn skip_sweep(kept_up: bool, credit: usize) -> bool {
    kept_up && credit >= 4
}

/// How many of `entries` came from each stream (see [`rank`]).
pub(super) fn per_stream<T>(entries: &[(Priority, T)]) -> [usize; 4] {
    let mut counts = [0; 4];
    for (priority, _) in entries {
        counts[rank(*priority)] += 1;
    }
    counts
}

/// Whether a read asking `count` of each stream got less from every one: then each
/// was read to its end.
pub(super) fn kept_up(per_stream: &[usize; 4], count: usize) -> bool {
    per_stream.iter().all(|&n| n < count)
}

/// The most urgent stream that gave a read all it asked (`count`): it may hold more.
pub(super) fn first_full(per_stream: &[usize; 4], count: usize) -> Option<Priority> {
    per_stream
        .iter()
        .position(|&n| n >= count)
        .map(|i| Priority::ALL[i])
}

/// Every priority, most urgent first, to slice.
static ALL: [Priority; 4] = Priority::ALL;

/// The next step of topping up the entries a woken read returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TopUp {
    /// Nothing is more urgent than they are (all critical, or none).
    Done,
    /// Read up to `count` of each of `streams`, the streams more urgent than the least
    /// urgent entry, without blocking, and add what comes.
    Read {
        streams: &'static [Priority],
        count: usize,
    },
    /// No credit is left to read them; `least` is the least urgent entry's priority.
    OutOfCredit { least: Priority },
}

/// What to read before `entries` are delivered, with `credit` free (before them).
pub(super) fn top_up<T>(entries: &[(Priority, T)], credit: usize) -> TopUp {
    let least = entries
        .iter()
        .map(|(priority, _)| *priority)
        .max()
        .unwrap_or(Priority::Critical);
    let streams = &ALL[..rank(least)];
    if streams.is_empty() {
        return TopUp::Done;
    }
    match credit.saturating_sub(entries.len()) / streams.len() {
        0 => TopUp::OutOfCredit { least },
        count => TopUp::Read { streams, count },
    }
}

/// Splits `entries` into those to deliver now (of `full`'s stream or more urgent) and
/// those to hold back: out of credit with more maybe waiting in stream `full`, what is
/// less urgent waits for the sweep, which runs next.
pub(super) fn hold_back<T>(entries: Vec<(Priority, T)>, full: Priority) -> HeldBack<T> {
    entries
        .into_iter()
        .partition(|(priority, _)| *priority <= full)
}

/// Entries to deliver now, and entries held back.
pub(super) type HeldBack<T> = (Vec<(Priority, T)>, Vec<(Priority, T)>);

/// Takes the held entries of `priority` out of `held`, in their order: every more
/// urgent stream was read to its end, so they go now, before newer ones of it.
pub(super) fn release<T>(held: &mut Vec<(Priority, T)>, priority: Priority) -> Vec<(Priority, T)> {
    let (now, later) = std::mem::take(held)
        .into_iter()
        .partition(|(p, _)| *p == priority);
    *held = later;
    now
}

/// Orders `entries` most urgent first; within a stream, older entries stay first.
pub(super) fn most_urgent_first<T>(entries: &mut [(Priority, T)]) {
    entries.sort_by_key(|(priority, _)| *priority);
}

/// How often to reclaim: twice per visibility timeout, at most every 50 ms.
pub(super) fn reclaim_every(visibility: Duration) -> Duration {
    (visibility / 2).max(Duration::from_millis(50))
}

/// How long a blocking read may block: `block`, but no later than the next round
/// (reclaim or alive key), `until` from now; at least 1 ms (0 would block forever).
pub(super) fn block_for(block: Duration, until: Duration) -> Duration {
    block.min(until).max(Duration::from_millis(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Priority::{Critical, High, Low, Normal};

    fn load(prefetch: usize, in_flight: usize, held: usize, remaining: Option<usize>) -> Load {
        Load {
            prefetch,
            in_flight,
            held,
            remaining,
        }
    }

    #[test]
    fn credit_is_the_prefetch_less_what_is_in_flight_or_held_and_what_is_left() {
        assert_eq!(credit(load(32, 0, 0, None)), 32);
        assert_eq!(credit(load(32, 10, 2, None)), 20);
        assert_eq!(credit(load(32, 40, 0, None)), 0);
        // A limit: held entries count against it too, in flight ones already did.
        assert_eq!(credit(load(32, 0, 0, Some(5))), 5);
        assert_eq!(credit(load(32, 3, 2, Some(5))), 3);
        assert_eq!(credit(load(32, 0, 6, Some(5))), 0);
    }

    #[test]
    fn a_busy_consumer_reads_once_a_quarter_of_its_prefetch_is_free() {
        assert!(may_read(load(32, 0, 0, None)));
        assert!(may_read(load(32, 24, 0, None)));
        assert!(!may_read(load(32, 25, 0, None)));
        assert!(!may_read(load(32, 32, 0, None)));
        // Nothing in flight: any credit is worth reading.
        assert!(may_read(load(32, 0, 0, Some(1))));
        assert!(!may_read(load(32, 1, 0, Some(1))));
        // Held entries and nothing in flight: the sweep releases them.
        assert!(may_read(load(4, 0, 5, None)));
        // A prefetch of 1: one at a time.
        assert!(may_read(load(1, 0, 0, None)));
        assert!(!may_read(load(1, 1, 0, None)));
        assert!(!may_read(load(32, 0, 0, Some(0))));
    }

    #[test]
    fn a_read_of_all_four_takes_a_quarter_of_the_credit_from_each() {
        assert_eq!(share(32), 8);
        assert_eq!(share(7), 1);
        assert_eq!(share(4), 1);
        assert_eq!(share(3), 3);
        assert_eq!(share(1), 1);
        assert!(skip_sweep(true, 4));
        assert!(!skip_sweep(true, 3));
        assert!(!skip_sweep(false, 32));
    }

    #[test]
    fn a_read_kept_up_when_every_stream_gave_less_than_asked() {
        let read = [(Critical, 1), (Normal, 2), (Normal, 3)];
        let counts = per_stream(&read);
        assert_eq!(counts, [1, 0, 2, 0]);
        assert!(kept_up(&counts, 3));
        assert!(!kept_up(&counts, 2));
        assert_eq!(first_full(&counts, 2), Some(Normal));
        assert_eq!(first_full(&counts, 1), Some(Critical));
        assert_eq!(first_full(&counts, 3), None);
    }

    #[test]
    fn a_woken_read_is_topped_up_from_the_more_urgent_streams_within_the_credit() {
        // Critical is never topped up; nothing read, nothing to top up.
        assert_eq!(top_up(&[(Critical, ())], 32), TopUp::Done);
        assert_eq!(top_up::<()>(&[], 32), TopUp::Done);
        // Low: the three more urgent streams share what the credit leaves.
        assert_eq!(
            top_up(&[(Low, ()), (Low, ())], 32),
            TopUp::Read {
                streams: &[Critical, High, Normal],
                count: 10
            }
        );
        assert_eq!(
            top_up(&[(High, ()), (Critical, ())], 8),
            TopUp::Read {
                streams: &[Critical],
                count: 6
            }
        );
        // The entries read took the credit.
        assert_eq!(
            top_up(&[(Normal, ()), (Normal, ())], 3),
            TopUp::OutOfCredit { least: Normal }
        );
    }

    #[test]
    fn out_of_credit_what_is_less_urgent_than_a_full_stream_is_held_until_the_sweep() {
        let read = vec![(Low, 1), (Critical, 2), (High, 3), (Normal, 4), (High, 5)];
        let (now, mut held) = hold_back(read, High);
        assert_eq!(now, [(Critical, 2), (High, 3), (High, 5)]);
        assert_eq!(held, [(Low, 1), (Normal, 4)]);
        assert!(release(&mut held, High).is_empty());
        assert_eq!(release(&mut held, Normal), [(Normal, 4)]);
        assert_eq!(held, [(Low, 1)]);
        assert_eq!(release(&mut held, Low), [(Low, 1)]);
        assert!(held.is_empty());
    }

    #[test]
    fn delivery_order_is_most_urgent_first_then_oldest_first() {
        let mut read = [(Low, 1), (Critical, 2), (Low, 3), (High, 4), (Critical, 5)];
        most_urgent_first(&mut read);
        assert_eq!(
            read,
            [(Critical, 2), (Critical, 5), (High, 4), (Low, 1), (Low, 3)]
        );
    }

    #[test]
    fn blocking_reads_end_by_the_next_round() {
        let ms = Duration::from_millis;
        assert_eq!(
            reclaim_every(Duration::from_secs(30)),
            Duration::from_secs(15)
        );
        assert_eq!(reclaim_every(ms(60)), ms(50));
        assert_eq!(block_for(ms(5000), ms(300)), ms(300));
        assert_eq!(block_for(ms(5000), ms(9000)), ms(5000));
        assert_eq!(block_for(ms(5000), Duration::ZERO), ms(1));
    }
}
