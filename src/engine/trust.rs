//! Verifiers by CA bundle, kept across runs: parsing roots is the costly part of TLS set-up.
//! Whether a bundle is usable is TLSVerified's decision (`checks/tls.rs`); only usable ones are
//! kept.

use crate::checks::{self, Finding};
use crate::transport::tls::Trust;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

#[derive(Default)]
pub(super) struct Cache(Mutex<HashMap<u64, Trust>>);

impl Cache {
    pub(super) fn get(&self, bundle: &[u8], public_roots: bool) -> Result<Trust, Finding> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (bundle, public_roots).hash(&mut h);
        let key = h.finish();
        if let Ok(cache) = self.0.lock()
            && let Some(t) = cache.get(&key)
        {
            return Ok(t.clone());
        }
        let trust = checks::tls::trust_store(bundle, public_roots)?;
        if let Ok(mut cache) = self.0.lock() {
            // Bounded: distinct bundles are few; a pathological stream of them just rebuilds.
            if cache.len() > 256 {
                cache.clear();
            }
            cache.insert(key, trust.clone());
        }
        Ok(trust)
    }
}
