//! Probe sharing: connections with the same credential, server and requirements share one run of
//! the Bitbucket-facing checks, so 1,000 connections on one token send one set of requests, not
//! 1,000. Concurrent callers of the same key wait for the one run in flight.
//!
//! A shared result is served while it is younger than what the caller allows (its connection's
//! interval): what a user asks with `interval` is how old a verdict may be. The caller learns
//! when the result was had, so it can schedule its next check for when the result goes stale:
//! every connection of a key then comes back at the same time and shares the next run, however
//! their schedules were spread (see `operator/reconcile.rs`).

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub type Key = [u8; 32];

type Flight<V> = Shared<BoxFuture<'static, Arc<V>>>;

struct Entry<V> {
    /// When the run started: its answers are at most this old.
    at: Instant,
    flight: Flight<V>,
    /// The longest age a caller accepted, for eviction.
    kept_for: Duration,
}

pub struct Memo<V> {
    entries: Mutex<HashMap<Key, Entry<V>>>,
}

/// A shared result.
pub struct Got<V> {
    pub value: Arc<V>,
    /// Whether this caller's run made it (its requests are counted there).
    pub ran: bool,
    /// When the run that made it started.
    pub at: Instant,
}

impl<V: Send + Sync + 'static> Default for Memo<V> {
    fn default() -> Self {
        Memo::new()
    }
}

impl<V: Send + Sync + 'static> Memo<V> {
    pub fn new() -> Memo<V> {
        Memo {
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The shared result for `key`, running `make` only if none in flight or young enough
    /// exists: a finished result is served while younger than `max_age(result)`. `fresh` forces
    /// a new run (a user asked for a re-check, or the inputs changed) and replaces the shared one.
    pub async fn get<F>(
        &self,
        key: Key,
        fresh: bool,
        max_age: impl Fn(&V) -> Duration,
        make: F,
    ) -> Got<V>
    where
        F: Future<Output = V> + Send + 'static,
    {
        let now = Instant::now();
        let (flight, ran, at) = {
            let Ok(mut entries) = self.entries.lock() else {
                // A poisoned lock means a panic elsewhere; run unshared rather than fail.
                return Got {
                    value: Arc::new(make.await),
                    ran: true,
                    at: now,
                };
            };
            if entries.len() > 4096 {
                entries.retain(|_, e| {
                    now.duration_since(e.at)
                        < e.kept_for.saturating_mul(2) + Duration::from_secs(60)
                });
            }
            let reusable = entries.get_mut(&key).filter(|_| !fresh).and_then(|e| {
                let young = match e.flight.peek() {
                    // In flight: join it.
                    None => true,
                    Some(v) => {
                        let limit = max_age(v);
                        e.kept_for = e.kept_for.max(limit);
                        now.duration_since(e.at) < limit
                    }
                };
                young.then(|| (e.flight.clone(), false, e.at))
            });
            match reusable {
                Some(r) => r,
                None => {
                    let f: Flight<V> = make.map(Arc::new).boxed().shared();
                    entries.insert(
                        key,
                        Entry {
                            at: now,
                            flight: f.clone(),
                            kept_for: Duration::ZERO,
                        },
                    );
                    (f, true, now)
                }
            }
        };
        Got {
            value: flight.await,
            ran,
            at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn one_run_per_key_while_the_result_is_young_enough() {
        let memo = Memo::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::new();
        let hour = |_: &u32| Duration::from_secs(3600);
        for _ in 0..100 {
            let runs = runs.clone();
            handles.push(memo.get([1; 32], false, hour, async move {
                runs.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
                7
            }));
        }
        let got = futures::future::join_all(handles).await;
        assert!(got.iter().all(|g| *g.value == 7 && g.at == got[0].at));
        assert_eq!(got.iter().filter(|g| g.ran).count(), 1);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        let g = memo.get([1; 32], true, hour, async { 8 }).await;
        assert!(g.ran, "fresh forces a run");
        let g = memo.get([1; 32], false, hour, async { 9 }).await;
        assert!(!g.ran && *g.value == 8, "and later callers share it");
        let g = memo.get([2; 32], false, hour, async { 9 }).await;
        assert!(g.ran && *g.value == 9);
    }

    #[tokio::test]
    async fn a_result_older_than_the_caller_allows_is_made_again() {
        let memo = Memo::new();
        let first = memo
            .get([3; 32], false, |_| Duration::from_secs(60), async { 1 })
            .await;
        assert!(first.ran);
        tokio::time::sleep(Duration::from_millis(30)).await;
        // A caller with a short interval, or a result that says "look again soon".
        let short = memo
            .get([3; 32], false, |_| Duration::from_millis(20), async { 2 })
            .await;
        assert!(short.ran && *short.value == 2 && short.at > first.at);
        let long = memo
            .get([3; 32], false, |_| Duration::from_secs(60), async { 3 })
            .await;
        assert!(!long.ran && *long.value == 2);
    }
}
