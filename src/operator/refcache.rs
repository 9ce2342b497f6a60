//! The data of the Secrets and ConfigMaps that connections reference, kept only while the
//! metadata watch says they are unchanged (same resourceVersion). Unreferenced objects' data is
//! never fetched; a referenced one is fetched again as soon as it changes, so a rotation is seen
//! at once, and 10,000 connections re-checked every interval do not re-read 10,000 Secrets.

use crate::checks::{Lookup, Meta};
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Secret,
    ConfigMap,
}

type Key = (Kind, Box<str>, Box<str>);

/// What is known of one object. One map, boxed strings and a flat copy of the data: the cache
/// holds every Secret in the watched namespaces, thousands of them.
#[derive(Default)]
struct Entry {
    /// From the metadata watch; `None` until it has seen the object (or after it saw it go).
    latest: Option<Box<str>>,
    /// Fetched data, with the resourceVersion it was fetched at ("" for NotFound).
    fetched: Option<(Box<str>, Kept)>,
}

/// A key of a Secret's or ConfigMap's data, and its value.
type Item = (Box<str>, Box<[u8]>);

enum Kept {
    Found {
        data: Box<[Item]>,
        expires_at: Option<Box<str>>,
    },
    NotFound,
}

impl Kept {
    fn of(lookup: &Lookup) -> Option<Kept> {
        match lookup {
            Lookup::Found(data, meta) => Some(Kept::Found {
                data: data
                    .iter()
                    .map(|(k, v)| (k.as_str().into(), v.as_slice().into()))
                    .collect(),
                expires_at: meta.expires_at.as_deref().map(Into::into),
            }),
            Lookup::NotFound => Some(Kept::NotFound),
            // Errors are never kept.
            Lookup::Forbidden(_) | Lookup::Failed(_) => None,
        }
    }

    fn lookup(&self, rv: &str) -> Lookup {
        match self {
            Kept::Found { data, expires_at } => Lookup::Found(
                data.iter()
                    .map(|(k, v)| (k.to_string(), v.to_vec()))
                    .collect(),
                Meta {
                    expires_at: expires_at.as_deref().map(str::to_string),
                    resource_version: Some(rv.to_string()).filter(|r| !r.is_empty()),
                },
            ),
            Kept::NotFound => Lookup::NotFound,
        }
    }
}

#[derive(Default)]
pub struct RefCache {
    entries: Mutex<HashMap<Key, Entry>>,
}

fn key(kind: Kind, ns: &str, name: &str) -> Key {
    (kind, ns.into(), name.into())
}

impl RefCache {
    /// From the metadata watch: the object now has `rv` (None: deleted). Whether that is news
    /// (created, changed or deleted since last seen): a relist that finds everything as it was
    /// need not re-check the connections that reference it.
    pub fn observe(&self, kind: Kind, ns: &str, name: &str, rv: Option<String>) -> bool {
        let Ok(mut entries) = self.entries.lock() else {
            return true;
        };
        let key = key(kind, ns, name);
        match rv {
            Some(rv) => {
                let e = entries.entry(key).or_default();
                let news = e.latest.as_deref() != Some(rv.as_str());
                e.latest = Some(rv.into());
                news
            }
            None => entries.remove(&key).is_some_and(|e| e.latest.is_some()),
        }
    }

    /// The cached lookup if it is still current.
    pub fn get(&self, kind: Kind, ns: &str, name: &str) -> Option<Lookup> {
        let entries = self.entries.lock().ok()?;
        let e = entries.get(&key(kind, ns, name))?;
        let (rv, kept) = e.fetched.as_ref()?;
        (**rv == *e.latest.as_deref().unwrap_or_default()).then(|| kept.lookup(rv))
    }

    /// Keeps a fetch result; errors are never kept.
    pub fn put(&self, kind: Kind, ns: &str, name: &str, rv: Option<String>, lookup: &Lookup) {
        let Some(kept) = Kept::of(lookup) else {
            return;
        };
        if let Ok(mut entries) = self.entries.lock() {
            entries.entry(key(kind, ns, name)).or_default().fetched =
                Some((rv.unwrap_or_default().into(), kept));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_reused_only_while_unchanged() {
        let c = RefCache::default();
        let found = Lookup::Found(
            Default::default(),
            Meta {
                resource_version: Some("5".into()),
                ..Default::default()
            },
        );
        assert!(c.observe(Kind::Secret, "ns", "tok", Some("5".into())));
        assert!(
            !c.observe(Kind::Secret, "ns", "tok", Some("5".into())),
            "a relist that finds it unchanged is no news"
        );
        assert!(c.get(Kind::Secret, "ns", "tok").is_none());
        c.put(Kind::Secret, "ns", "tok", Some("5".into()), &found);
        assert_eq!(c.get(Kind::Secret, "ns", "tok"), Some(found.clone()));
        assert!(c.observe(Kind::Secret, "ns", "tok", Some("6".into())));
        assert!(
            c.get(Kind::Secret, "ns", "tok").is_none(),
            "rotated: fetch again"
        );
        assert!(c.observe(Kind::Secret, "ns", "tok", None));
        c.put(Kind::Secret, "ns", "tok", None, &Lookup::NotFound);
        assert_eq!(c.get(Kind::Secret, "ns", "tok"), Some(Lookup::NotFound));
        c.put(
            Kind::Secret,
            "ns",
            "x",
            None,
            &Lookup::Forbidden("no".into()),
        );
        assert!(
            c.get(Kind::Secret, "ns", "x").is_none(),
            "errors are not kept"
        );
    }
}
