//! The data of the Secrets and ConfigMaps that connections reference, kept only while the
//! metadata watch says they are unchanged (same resourceVersion). Unreferenced objects' data is
//! never fetched; a referenced one is fetched again as soon as it changes, so a rotation is seen
//! at once, and 10,000 connections re-checked every interval do not re-read 10,000 Secrets.

use crate::checks::Lookup;
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Secret,
    ConfigMap,
}

type Key = (Kind, String, String);

#[derive(Default)]
pub struct RefCache {
    /// resourceVersion of every object of the two kinds, from the metadata watches.
    latest: Mutex<HashMap<Key, String>>,
    /// Fetched data, with the resourceVersion it was fetched at ("" for NotFound).
    fetched: Mutex<HashMap<Key, (String, Lookup)>>,
}

impl RefCache {
    /// From the metadata watch: the object now has `rv` (None: deleted). Whether that is news
    /// (created, changed or deleted since last seen): a relist that finds everything as it was
    /// need not re-check the connections that reference it.
    pub fn observe(&self, kind: Kind, ns: &str, name: &str, rv: Option<String>) -> bool {
        let key = (kind, ns.to_string(), name.to_string());
        let Ok(mut latest) = self.latest.lock() else {
            return true;
        };
        match rv {
            Some(rv) => latest.insert(key, rv.clone()).is_none_or(|old| old != rv),
            None => {
                let known = latest.remove(&key).is_some();
                if let Ok(mut fetched) = self.fetched.lock() {
                    fetched.remove(&key);
                }
                known
            }
        }
    }

    /// The cached lookup if it is still current.
    pub fn get(&self, kind: Kind, ns: &str, name: &str) -> Option<Lookup> {
        let key = (kind, ns.to_string(), name.to_string());
        let latest = self
            .latest
            .lock()
            .ok()?
            .get(&key)
            .cloned()
            .unwrap_or_default();
        let fetched = self.fetched.lock().ok()?;
        match fetched.get(&key) {
            Some((rv, lookup)) if *rv == latest => Some(lookup.clone()),
            _ => None,
        }
    }

    /// Keeps a fetch result; errors are never kept.
    pub fn put(&self, kind: Kind, ns: &str, name: &str, rv: Option<String>, lookup: &Lookup) {
        if !matches!(lookup, Lookup::Found(..) | Lookup::NotFound) {
            return;
        }
        if let Ok(mut fetched) = self.fetched.lock() {
            fetched.insert(
                (kind, ns.to_string(), name.to_string()),
                (rv.unwrap_or_default(), lookup.clone()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_reused_only_while_unchanged() {
        let c = RefCache::default();
        let found = Lookup::Found(Default::default(), Default::default());
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
