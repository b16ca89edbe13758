//! The consumer names in use in this process: a client reconnecting under the same
//! name (its old connection not yet closed) starts after the old consumer has handed
//! its tasks back, so that the new one's recovery sees them as due.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

/// Each name locked while its consumer runs and hands back.
static NAMES: LazyLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> =
    LazyLock::new(Default::default);

/// A consumer name held in [`NAMES`]; released on drop.
pub(super) struct NameLock {
    key: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl NameLock {
    /// Waits (a few seconds at most: a connection that is gone but not yet closed must
    /// not hold the name long) until no other consumer of this process holds the name.
    pub(super) async fn acquire(group: &str, consumer: &str) -> Self {
        let key = format!("{group}\n{consumer}");
        let lock = NAMES
            .lock()
            .expect("name locks poisoned")
            .entry(key.clone())
            .or_default()
            .clone();
        let guard = tokio::time::timeout(Duration::from_secs(3), lock.lock_owned())
            .await
            .ok();
        Self { key, guard }
    }

    /// The name, if no other consumer of this process holds it now (no wait).
    pub(super) fn try_acquire(group: &str, consumer: &str) -> Option<Self> {
        let key = format!("{group}\n{consumer}");
        let lock = NAMES
            .lock()
            .expect("name locks poisoned")
            .entry(key.clone())
            .or_default()
            .clone();
        let guard = lock.try_lock_owned().ok();
        // Made either way, so that dropping it forgets an unused name.
        let held = Self { key, guard };
        held.guard.is_some().then_some(held)
    }
}

impl Drop for NameLock {
    fn drop(&mut self) {
        self.guard.take();
        let mut names = NAMES.lock().expect("name locks poisoned");
        // Forgotten once nobody holds or waits for it (names may be made up per client).
        if names
            .get(&self.key)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            names.remove(&self.key);
        }
    }
}
