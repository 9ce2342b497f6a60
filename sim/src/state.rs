//! What the simulator's handlers share: the fixture, the bound listeners, the request log and
//! fault counters, and each flavour's runtime state. Every handler module (`server.rs`,
//! `cloud/`, `dc/`, `git/`, `proxy.rs`) imports from here; this module imports none of
//! them, so the imports point one way.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use http::Method;

use crate::fixture::{DataCenter, DcRateLimit, Fault, Fixture, ListenerKind};
use crate::http::{self as h, Credential, parse_authorization};

/// The plain-text body of a 429 (support.atlassian.com/bitbucket-cloud/docs/api-request-limits:
/// "429 with a plain-text body").
pub(crate) const RATE_LIMITED_BODY: &str = "Rate limit for this resource has been exceeded";

/// A bound listener.
pub(crate) struct ListenerRt {
    pub name: String,
    pub addr: SocketAddr,
    pub kind: ListenerKind,
    pub tls: bool,
    pub cloud: bool,
    pub dc: bool,
    /// Normalised: empty, or `/x` without a trailing slash.
    pub base_path: String,
    pub advertised_base_url: Option<String>,
}

/// Everything the handlers share.
pub(crate) struct Shared {
    pub fixture: Fixture,
    pub listeners: Vec<ListenerRt>,
    records: Mutex<Vec<RecordedRequest>>,
    count: AtomicUsize,
    fault_remaining: Vec<AtomicU64>,
    pub cloud: CloudState,
    pub dc: DcState,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub fn addr(&self, name: &str) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.addr)
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.records).clone()
    }

    pub fn request_count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    pub fn clear_requests(&self) {
        lock(&self.records).clear();
    }

    pub fn record(&self, r: RecordedRequest) {
        self.count.fetch_add(1, Ordering::Relaxed);
        if self.fixture.record_requests {
            lock(&self.records).push(r);
        }
    }

    /// The first fault matching this request whose `times` is not used up (and uses one).
    pub(crate) fn take_fault(
        &self,
        listener: usize,
        method: &Method,
        path: &str,
        query: Option<&str>,
        auth: Option<&str>,
    ) -> Option<&Fault> {
        if self.fixture.faults.is_empty() {
            return None;
        }
        let creds: Vec<String> = match auth.map(parse_authorization) {
            Some(Credential::Basic { user, password }) => vec![user, password],
            Some(Credential::Bearer(t)) => vec![t],
            _ => Vec::new(),
        };
        let name = &self.listeners[listener].name;
        for (i, f) in self.fixture.faults.iter().enumerate() {
            if f.listener.as_ref().is_some_and(|l| l != name)
                || f.path_prefix
                    .as_ref()
                    .is_some_and(|p| !path.starts_with(p.as_str()))
                || f.method
                    .as_ref()
                    .is_some_and(|m| !m.eq_ignore_ascii_case(method.as_str()))
                || f.credential.as_ref().is_some_and(|c| !creds.contains(c))
                || f.query_contains
                    .as_ref()
                    .is_some_and(|q| !query.is_some_and(|have| have.contains(q.as_str())))
            {
                continue;
            }
            if f.times.is_some()
                && self.fault_remaining[i]
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1))
                    .is_err()
            {
                continue;
            }
            return Some(f);
        }
        None
    }
}

impl Shared {
    pub fn new(fixture: Fixture, listeners: Vec<ListenerRt>) -> Shared {
        let fault_remaining = fixture
            .faults
            .iter()
            .map(|f| AtomicU64::new(f.times.unwrap_or(u64::MAX)))
            .collect();
        Shared {
            cloud: CloudState::default(),
            dc: DcState::new(&fixture),
            fixture,
            listeners,
            records: Mutex::new(Vec::new()),
            count: AtomicUsize::new(0),
            fault_remaining,
        }
    }
}

const HOUR: Duration = Duration::from_secs(3600);

/// Runtime state: rate-limit windows and OAuth tokens issued by the token endpoint.
#[derive(Default)]
pub(crate) struct CloudState {
    rate: Mutex<HashMap<String, VecDeque<Instant>>>,
    pub(crate) issued: Mutex<HashMap<String, Issued>>,
    pub(crate) refresh: Mutex<HashMap<String, usize>>,
    counter: AtomicU64,
}

pub(crate) struct Issued {
    pub(crate) consumer: usize,
    pub(crate) at: Instant,
}

impl CloudState {
    /// Rolling-hour limit per key. `Err(seconds)`: over the limit, with the time until the
    /// oldest counted request leaves the window.
    pub(crate) fn admit(&self, key: &str, limit: u32) -> Result<(), u64> {
        let now = Instant::now();
        let mut map = lock(&self.rate);
        if !map.contains_key(key) {
            map.insert(key.to_owned(), VecDeque::new());
        }
        let Some(window) = map.get_mut(key) else {
            return Ok(());
        };
        while window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= HOUR)
        {
            window.pop_front();
        }
        if window.len() >= limit as usize {
            let wait = window
                .front()
                .map(|t| (*t + HOUR).saturating_duration_since(now))
                .unwrap_or(HOUR);
            return Err(wait.as_secs_f64().ceil().max(1.0) as u64);
        }
        window.push_back(now);
        Ok(())
    }

    pub(crate) fn issue(&self, consumer: usize) -> (String, String) {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let salt = h::fnv(&format!("{n}/{nanos}/{consumer}"));
        let access = format!("sim-oauth-access-{n}-{salt:016x}");
        let refresh = format!("sim-oauth-refresh-{n}-{:016x}", h::fnv(&access));
        lock(&self.issued).insert(
            access.clone(),
            Issued {
                consumer,
                at: Instant::now(),
            },
        );
        lock(&self.refresh).insert(refresh.clone(), consumer);
        (access, refresh)
    }
}

/// Runtime state: when each token last authenticated, failed logins per user, rate buckets.
pub(crate) struct DcState {
    pub(crate) started_ms: i64,
    pub(crate) last_auth: Mutex<HashMap<usize, i64>>,
    /// User slug -> consecutive failed logins (a success resets it, as Bitbucket does).
    failures: Mutex<BTreeMap<String, u32>>,
    /// Principal name -> (tokens left, when last refilled).
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl DcState {
    pub fn failed_logins(&self) -> BTreeMap<String, u32> {
        lock(&self.failures).clone()
    }

    pub fn reset_failed_logins(&self, user: Option<&str>) {
        let mut map = lock(&self.failures);
        match user {
            Some(u) => {
                map.remove(&u.to_lowercase());
            }
            None => map.clear(),
        }
    }

    pub(crate) fn captcha_on(&self, dc: &DataCenter, slug: &str) -> bool {
        dc.captcha_after_failures > 0
            && lock(&self.failures)
                .get(slug)
                .is_some_and(|n| *n >= dc.captcha_after_failures)
    }

    pub(crate) fn failed(&self, slug: &str) {
        *lock(&self.failures).entry(slug.to_owned()).or_insert(0) += 1;
    }

    pub(crate) fn succeeded(&self, slug: &str) {
        lock(&self.failures).remove(slug);
    }

    /// Token bucket: `Err(seconds)` when empty, with the time until the next token.
    pub(crate) fn take_token(&self, key: &str, limit: &DcRateLimit) -> Result<(), u64> {
        let now = Instant::now();
        let size = f64::from(limit.bucket_size.max(1));
        let rate = limit.refill_per_second.max(0.001);
        let mut map = lock(&self.buckets);
        let (tokens, at) = map.entry(key.to_owned()).or_insert((size, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(size);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

impl DcState {
    pub fn new(f: &Fixture) -> DcState {
        let last_auth = f
            .datacenter
            .tokens
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.last_authenticated.map(|ts| (i, ts.as_millisecond())))
            .collect();
        DcState {
            started_ms: now_ms(),
            last_auth: Mutex::new(last_auth),
            failures: Mutex::new(BTreeMap::new()),
            buckets: Mutex::new(HashMap::new()),
        }
    }
}

pub(crate) fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// One HTTP request the simulator answered (CONNECT requests to a proxy listener included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The listener's name in the fixture.
    pub listener: String,
    pub method: String,
    /// The path (for CONNECT: the `host:port` target).
    pub path: String,
    pub query: Option<String>,
    /// The raw `Authorization` header (for CONNECT: `Proxy-Authorization`).
    pub authorization: Option<String>,
    /// The status answered; 0 when a `reset` fault closed the connection instead.
    pub status: u16,
}
