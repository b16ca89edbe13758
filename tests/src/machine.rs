//! Who shares the machine: CPU-heavy tests are kept apart from each other and from the
//! tests that depend on prompt scheduling.
//!
//! Every end-to-end test is in one test binary (`tests/tests/e2e/`), whose tests run in
//! parallel threads (as many as cores), so tests of different features may run at the
//! same time. Most of them wait for events with timeouts of many seconds and do not
//! mind. Two kinds do, and hold a guard from here for their whole run:
//!
//! - [`heavy`]: a test that keeps the machine busy for long (the fuzz suite, chaos and
//!   its soak, the DLQ API timings). It runs alongside no other heavy test and no timing
//!   test; any other test may run beside it.
//! - [`timing`]: a test whose result, or the numbers it prints, depend on the machine
//!   not being saturated (a task shown within a second, a state visible for 1.5 s, a
//!   rate limit's budget not refilled while a flood is written, a ping answered within
//!   400 ms, a reader keeping up with a writer, the first of two consumers reading
//!   first, a load time the README quotes). It waits while a heavy test runs; timing
//!   tests run alongside each other.
//!
//! One `tokio` lock for the whole binary (fair: a heavy test waiting keeps new timing
//! tests out until it has run). It works across the tests' runtimes, and a test that
//! panics releases its guard as it unwinds.

use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

static MACHINE: RwLock<()> = RwLock::const_new(());

/// For a CPU-heavy test: waits until no other heavy test and no [`timing`] test runs,
/// and keeps them out until the guard is dropped (`let _alone = machine::heavy().await;`
/// first thing in the test).
pub async fn heavy() -> RwLockWriteGuard<'static, ()> {
    MACHINE.write().await
}

/// For a test that depends on prompt scheduling: waits while a [`heavy`] test runs,
/// and keeps heavy tests out until the guard is dropped
/// (`let _timing = machine::timing().await;` first thing in the test).
pub async fn timing() -> RwLockReadGuard<'static, ()> {
    MACHINE.read().await
}
