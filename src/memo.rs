//! Probe sharing: connections with the same credential, server and requirements share one run of
//! the Bitbucket-facing checks within a short window, so 1,000 connections on one token send one
//! set of requests, not 1,000. Concurrent callers of the same key wait for the one run in flight.

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub type Key = [u8; 32];

type Flight<V> = Shared<BoxFuture<'static, Arc<V>>>;

pub struct Memo<V> {
    ttl: Duration,
    entries: Mutex<HashMap<Key, (Instant, Flight<V>)>>,
}

impl<V: Send + Sync + 'static> Memo<V> {
    pub fn new(ttl: Duration) -> Memo<V> {
        Memo {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The shared result for `key`, running `make` only if no fresh one exists. `fresh` forces a
    /// new run (a user asked for a re-check) and replaces the shared one. The second value says
    /// whether this caller's `make` ran.
    pub async fn get<F>(&self, key: Key, fresh: bool, make: F) -> (Arc<V>, bool)
    where
        F: Future<Output = V> + Send + 'static,
    {
        let now = Instant::now();
        let (flight, ran) = {
            let Ok(mut entries) = self.entries.lock() else {
                // A poisoned lock means a panic elsewhere; run unshared rather than fail.
                return (Arc::new(make.await), true);
            };
            if entries.len() > 4096 {
                let ttl = self.ttl;
                entries.retain(|_, (at, _)| now.duration_since(*at) < ttl);
            }
            match entries.get(&key) {
                Some((at, f)) if !fresh && now.duration_since(*at) < self.ttl => (f.clone(), false),
                _ => {
                    let f: Flight<V> = make.map(Arc::new).boxed().shared();
                    entries.insert(key, (now, f.clone()));
                    (f, true)
                }
            }
        };
        (flight.await, ran)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn one_run_per_key_within_the_window() {
        let memo = Memo::new(Duration::from_secs(60));
        let runs = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::new();
        for _ in 0..100 {
            let runs = runs.clone();
            handles.push(memo.get([1; 32], false, async move {
                runs.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
                7
            }));
        }
        for (v, _) in futures::future::join_all(handles).await {
            assert_eq!(*v, 7);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        let (_, ran) = memo.get([1; 32], true, async { 8 }).await;
        assert!(ran, "fresh forces a run");
        let (v, ran) = memo.get([2; 32], false, async { 9 }).await;
        assert!(ran && *v == 9);
    }
}
