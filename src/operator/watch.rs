//! Watches that recover by themselves, and a trigger stream that never names an object the
//! controller's store does not hold yet.
//!
//! kube's `default_backoff()` waits up to 30 s after an error, and the controller adds its own
//! trigger backoff (another 30 s) for any error that reaches it: after an API-server restart the
//! operator was blind for minutes. Here a 410 Gone relists at once, other errors retry within a
//! few seconds, and no error reaches the controller.
//!
//! During a relist the reflector keeps the objects it lists in a buffer and swaps them into the
//! store only at `InitDone`; a trigger for an object created meanwhile reached the controller
//! before the store had it and was dropped ("not found in local store"), never to be retried.
//! [`settled`] holds those triggers until `InitDone`.

use futures::{Stream, StreamExt};
use kube::Resource;
use kube::runtime::reflector::{ObjectRef, Store, store::Writer};
use kube::runtime::watcher;
use std::collections::VecDeque;
use std::hash::Hash;
use std::time::Duration;

/// How long to wait before polling a watch again after its `attempt`th error in a row.
pub fn delay(err: &watcher::Error, attempt: u32) -> Duration {
    if is_gone(err) {
        // The watcher has already reset itself to relist; waiting only makes the operator blind.
        return Duration::ZERO;
    }
    let ms = 250u64.saturating_mul(1u64 << attempt.min(5));
    Duration::from_millis(ms.min(4_000))
}

fn is_gone(err: &watcher::Error) -> bool {
    match err {
        watcher::Error::WatchError(s) => s.code == 410,
        watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::InitialListFailed(kube::Error::Api(s)) => s.code == 410,
        _ => false,
    }
}

/// The events of `make()`'s watch, retried on errors with [`delay`]; errors are logged and
/// counted (`on_error`), never passed on. A 410 on starting a watch (the watcher would retry
/// the same resourceVersion forever) starts a fresh watch, which relists.
pub fn resilient<S, K, F>(
    what: &'static str,
    make: F,
    on_error: impl Fn() + Send + 'static,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static
where
    F: Fn() -> S + Send + 'static,
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
    K: Send + 'static,
{
    let first = make().boxed();
    futures::stream::unfold(
        (first, make, 0u32, on_error),
        move |(mut inner, make, mut attempt, on_error)| async move {
            loop {
                match inner.next().await {
                    Some(Ok(event)) => return Some((Ok(event), (inner, make, 0, on_error))),
                    Some(Err(e)) => {
                        on_error();
                        let wait = delay(&e, attempt);
                        if attempt < 3 || is_gone(&e) {
                            tracing::info!(watch = what, error = %e, retry_in = ?wait, "watch interrupted");
                        } else {
                            tracing::warn!(watch = what, error = %e, retry_in = ?wait, "watch still failing");
                        }
                        attempt = attempt.saturating_add(1);
                        if matches!(e, watcher::Error::WatchStartFailed(kube::Error::Api(ref s)) if s.code == 410)
                        {
                            inner = make().boxed();
                        }
                        tokio::time::sleep(wait).await;
                    }
                    None => inner = make().boxed(),
                }
            }
        },
    )
}

/// What of an object, changed, calls for a check: its identity, its generation (the spec), and
/// the annotation that asks for a re-check. A change to status alone (this operator's own
/// write, seen back through the watch) does not.
pub trait Wants {
    fn wants_check_since(&self, old: &Self) -> bool;
}

/// Reflects `events` into `writer`, and yields the objects to reconcile: applied objects that
/// are new or [`Wants`] a check, at once; objects listed by a (re)list only once the store holds
/// them (at `InitDone`), and only those that are new or changed since the store last saw them, so
/// a relist does not re-check every connection.
pub fn settled<K, S>(
    events: S,
    mut writer: Writer<K>,
    store: Store<K>,
) -> impl Stream<Item = Result<K, watcher::Error>>
where
    K: Resource + Wants + Clone + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
{
    let mut held: Vec<ObjectRef<K>> = Vec::new();
    events.flat_map(move |event| {
        // Judged against the store before the event is applied to it.
        let out: VecDeque<Result<K, watcher::Error>> = match &event {
            Err(_) => VecDeque::new(),
            Ok(watcher::Event::Apply(o)) => {
                let wanted = store
                    .get(&ObjectRef::from_obj(o))
                    .is_none_or(|old| o.wants_check_since(&old));
                if wanted {
                    VecDeque::from([Ok(trigger(o))])
                } else {
                    VecDeque::new()
                }
            }
            Ok(watcher::Event::Delete(_)) => VecDeque::new(),
            Ok(watcher::Event::Init) => {
                held.clear();
                VecDeque::new()
            }
            Ok(watcher::Event::InitApply(o)) => {
                let r = ObjectRef::from_obj(o);
                // The store still holds the previous list here: unchanged objects keep the
                // schedule the controller already has for them.
                let known = store
                    .get(&r)
                    .is_some_and(|old| old.meta().resource_version == o.meta().resource_version);
                if !known {
                    held.push(r);
                }
                VecDeque::new()
            }
            Ok(watcher::Event::InitDone) => VecDeque::new(),
        };
        let out = match event {
            Err(e) => VecDeque::from([Err(e)]),
            Ok(ev) => {
                writer.apply_watcher_event(&ev);
                if matches!(ev, watcher::Event::InitDone) {
                    std::mem::take(&mut held)
                        .into_iter()
                        .filter_map(|r| store.get(&r))
                        .map(|o| Ok(trigger(&*o)))
                        .collect()
                } else {
                    out
                }
            }
        };
        futures::stream::iter(out)
    })
}

/// The object as a trigger: the controller takes only its reference from it (and reads the
/// object itself from the store), and keeps that reference in its schedule for as long as the
/// object exists. Without the resourceVersion and uid the reference carries no strings but the
/// name and namespace (they are not part of its identity: `ObjectRef` ignores them).
fn trigger<K: Resource + Clone>(o: &K) -> K {
    let mut t = o.clone();
    let meta = t.meta_mut();
    meta.resource_version = None;
    meta.uid = None;
    t
}

impl Wants for crate::api::BitbucketConnection {
    fn wants_check_since(&self, old: &Self) -> bool {
        let requested = |c: &Self| {
            c.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(super::reconcile::REQUESTED_AT))
                .cloned()
        };
        self.metadata.uid != old.metadata.uid
            || self.metadata.generation != old.metadata.generation
            || requested(self) != requested(old)
            // Status removed or replaced by someone else: write it again.
            || self.status.is_none()
    }
}

impl Wants for kube::core::DeserializeGuard<crate::api::BitbucketConnection> {
    fn wants_check_since(&self, old: &Self) -> bool {
        match (&self.0, &old.0) {
            (Ok(new), Ok(old)) => new.wants_check_since(old),
            // Readable again, unreadable now, or an unreadable one edited: look again.
            _ => {
                self.0.is_ok() != old.0.is_ok()
                    || self.meta().uid != old.meta().uid
                    || self.meta().generation != old.meta().generation
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;
    use kube::runtime::reflector;

    impl Wants for ConfigMap {
        fn wants_check_since(&self, old: &Self) -> bool {
            self.data != old.data
        }
    }

    fn cm(name: &str, rv: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                resource_version: Some(rv.into()),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        }
    }

    #[tokio::test]
    async fn objects_listed_by_a_relist_are_triggered_once_the_store_has_them() {
        use watcher::Event::*;
        let (reader, writer) = reflector::store::<ConfigMap>();
        let events = vec![
            Init,
            InitApply(cm("a", "1")),
            InitDone,
            // A relist (410 Gone): "a" unchanged, "b" created while the watch was down.
            Init,
            InitApply(cm("a", "1")),
            InitApply(cm("b", "7")),
            InitDone,
            Apply(cm("c", "9")),
            // Changed in what does not call for a check (for a connection: its status).
            Apply(cm("c", "10")),
        ];
        let stream = futures::stream::iter(events.into_iter().map(Ok));
        let store = reader.clone();
        // Every object the controller is given must be in the store when it is given.
        let seen: Vec<(String, bool)> = settled(stream, writer, reader)
            .map(|o| {
                let o = o.unwrap();
                let present = store.get(&ObjectRef::from_obj(&o)).is_some();
                (o.metadata.name.unwrap(), present)
            })
            .collect()
            .await;
        assert_eq!(
            seen,
            vec![
                ("a".to_string(), true),
                ("b".to_string(), true),
                ("c".to_string(), true)
            ]
        );
    }

    #[test]
    fn gone_relists_at_once_and_other_errors_retry_within_seconds() {
        let gone = watcher::Error::WatchError(Box::new(
            kube::core::Status::failure("too old resource version", "Expired").with_code(410),
        ));
        assert_eq!(delay(&gone, 7), Duration::ZERO);
        let down = watcher::Error::NoResourceVersion;
        assert_eq!(delay(&down, 0), Duration::from_millis(250));
        assert!(delay(&down, 1) > delay(&down, 0));
        assert_eq!(delay(&down, 30), Duration::from_secs(4));
    }

    #[tokio::test]
    async fn errors_are_retried_and_never_passed_on() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let made = Arc::new(AtomicUsize::new(0));
        let errors = Arc::new(AtomicUsize::new(0));
        let m = made.clone();
        let e = errors.clone();
        let out: Vec<_> = resilient(
            "test",
            move || {
                m.fetch_add(1, Ordering::SeqCst);
                let gone = watcher::Error::WatchError(Box::new(
                    kube::core::Status::failure("gone", "Expired").with_code(410),
                ));
                futures::stream::iter(vec![
                    Ok(watcher::Event::<ConfigMap>::Init),
                    Err(gone),
                    Ok(watcher::Event::InitDone),
                ])
            },
            move || {
                e.fetch_add(1, Ordering::SeqCst);
            },
        )
        .take(4)
        .collect()
        .await;
        assert!(out.iter().all(|r| r.is_ok()));
        // Two runs of the watch, each with its 410.
        assert_eq!(errors.load(Ordering::SeqCst), 2);
        assert_eq!(
            made.load(Ordering::SeqCst),
            2,
            "an ended watch is started again"
        );
    }
}
