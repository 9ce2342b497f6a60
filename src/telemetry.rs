//! Metrics as docs/design/contract.md names them. Connection gauges are computed at scrape time from the
//! operator's cache, so a deleted connection leaves no stale series (cert-manager's approach);
//! counters and the histogram are fed by the reconciler.

use crate::api::BitbucketConnection;
use kube::core::DeserializeGuard;

/// The operator's cache holds connections as read, valid or not; the gauges count the valid.
type Guarded = DeserializeGuard<BitbucketConnection>;
use crate::catalogue::Check;
use kube::ResourceExt;
use kube::runtime::reflector::Store;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, RwLock};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CheckLabel {
    pub check: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub host: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RateLimitLabels {
    pub host: String,
    pub resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}

pub struct Metrics {
    pub registry: Registry,
    pub check_duration: Family<CheckLabel, Histogram>,
    pub requests: Family<RequestLabels, Counter>,
    pub reconciles: Family<ResultLabel, Counter>,
    pub status_writes: Counter,
    pub status_write_errors: Counter,
    pub invalid_objects: Counter,
    pub watch_errors: Counter,
    pub leader: Gauge<i64, AtomicI64>,
    pub rate_limit: Family<RateLimitLabels, Gauge<i64, AtomicI64>>,
    pub rate_limit_remaining: Family<RateLimitLabels, Gauge<i64, AtomicI64>>,
    pub rate_limit_near: Family<RateLimitLabels, Gauge<i64, AtomicI64>>,
    /// The store the connection gauges read: each leadership term has its own.
    connections: Arc<RwLock<Option<Store<Guarded>>>>,
    shard: Option<String>,
}

impl Metrics {
    pub fn new(store: Option<Store<Guarded>>) -> Arc<Metrics> {
        Metrics::for_shard(store, None)
    }

    /// With `shard`, every series is labelled `shard="NAME"`, so several shards' metrics can be
    /// told apart and summed.
    pub fn for_shard(store: Option<Store<Guarded>>, shard: Option<&str>) -> Arc<Metrics> {
        let mut registry = registry(shard);
        let check_duration = Family::<CheckLabel, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ])
        });
        let requests = Family::<RequestLabels, Counter>::default();
        let reconciles = Family::<ResultLabel, Counter>::default();
        let status_writes = Counter::default();
        let status_write_errors = Counter::default();
        let invalid_objects = Counter::default();
        let leader = Gauge::<i64, AtomicI64>::default();
        let watch_errors = Counter::default();
        registry.register(
            "bbconn_watch_errors",
            "Watch interruptions (API server unavailable, 410 Gone), each retried",
            watch_errors.clone(),
        );
        registry.register(
            "bbconn_check_duration_seconds",
            "Time spent in each check",
            check_duration.clone(),
        );
        registry.register(
            "bbconn_bitbucket_requests",
            "Requests sent to Bitbucket, by host and answer status",
            requests.clone(),
        );
        registry.register(
            "bbconn_reconcile",
            "Reconciles, by result",
            reconciles.clone(),
        );
        registry.register(
            "bbconn_status_writes",
            "Status patches sent to the API server",
            status_writes.clone(),
        );
        registry.register(
            "bbconn_status_write_errors",
            "Status patches the API server refused or that failed",
            status_write_errors.clone(),
        );
        registry.register(
            "bbconn_invalid_objects",
            "BitbucketConnections skipped because they could not be read",
            invalid_objects.clone(),
        );
        registry.register(
            "bbconn_leader",
            "1 while this replica holds the leader Lease",
            leader.clone(),
        );
        let rate_limit = Family::<RateLimitLabels, Gauge<i64, AtomicI64>>::default();
        let rate_limit_remaining = Family::<RateLimitLabels, Gauge<i64, AtomicI64>>::default();
        let rate_limit_near = Family::<RateLimitLabels, Gauge<i64, AtomicI64>>::default();
        registry.register(
            "bbconn_bitbucket_rate_limit",
            "Requests per rolling hour Bitbucket allows, from its last X-RateLimit-Limit, by host and resource",
            rate_limit.clone(),
        );
        registry.register(
            "bbconn_bitbucket_rate_limit_remaining",
            "Requests left in the rolling hour, from Bitbucket's last X-RateLimit-Remaining",
            rate_limit_remaining.clone(),
        );
        registry.register(
            "bbconn_bitbucket_rate_limit_near",
            "1 when Bitbucket's last answer said X-RateLimit-NearLimit: true",
            rate_limit_near.clone(),
        );
        let connections = Arc::new(RwLock::new(store));
        Arc::new(Metrics {
            registry,
            check_duration,
            requests,
            reconciles,
            status_writes,
            status_write_errors,
            invalid_objects,
            watch_errors,
            leader,
            rate_limit,
            rate_limit_remaining,
            rate_limit_near,
            connections,
            shard: shard.map(str::to_string),
        })
    }

    pub fn observe_rate_limit(&self, host: &str, r: &crate::bitbucket::RateLimit) {
        let labels = RateLimitLabels {
            host: host.to_string(),
            resource: r.resource.clone(),
        };
        let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        if let Some(l) = r.limit {
            self.rate_limit.get_or_create(&labels).set(clamp(l));
        }
        if let Some(l) = r.remaining {
            self.rate_limit_remaining
                .get_or_create(&labels)
                .set(clamp(l));
        }
        self.rate_limit_near
            .get_or_create(&labels)
            .set(i64::from(r.near_limit));
    }

    /// The store the connection gauges are computed from (None: no connections, as a replica
    /// that does not lead).
    pub fn set_store(&self, store: Option<Store<Guarded>>) {
        if let Ok(mut s) = self.connections.write() {
            *s = store;
        }
    }

    pub fn observe_check(&self, check: Check, seconds: f64) {
        self.check_duration
            .get_or_create(&CheckLabel {
                check: check.as_str().to_string(),
            })
            .observe(seconds);
    }

    pub fn count_request(&self, host: &str, status: u16) {
        self.requests
            .get_or_create(&RequestLabels {
                host: host.to_string(),
                status: status.to_string(),
            })
            .inc();
    }

    pub fn count_reconcile(&self, result: &str) {
        self.reconciles
            .get_or_create(&ResultLabel {
                result: result.to_string(),
            })
            .inc();
    }

    /// The whole exposition in one string (what `chunks` yields, joined).
    pub fn encode(&self) -> String {
        self.chunks().collect()
    }

    /// The exposition in pieces of at most `CHUNK` connections: 10,000 connections make ~40 MB
    /// of text (the condition gauges are one-hot), which a scrape must not hold at once.
    pub fn chunks(&self) -> impl Iterator<Item = String> + Send + 'static {
        let objects = self
            .connections
            .read()
            .ok()
            .and_then(|s| s.as_ref().map(|s| s.state()))
            .unwrap_or_default();
        let mut head = String::new();
        if prometheus_client::encoding::text::encode_registry(&mut head, &self.registry).is_err() {
            head.clear();
        }
        let shard = self.shard.clone();
        let discovered = encode_discovered(&objects, self.shard.as_deref());
        let families = ConnectionFamily::ALL.into_iter().flat_map(move |family| {
            let objects = objects.clone();
            let shard = shard.clone();
            // An empty family still shows its descriptor.
            let pieces = objects.len().div_ceil(CHUNK).max(1);
            (0..pieces).map(move |i| {
                let end = objects.len().min((i + 1) * CHUNK);
                let part = &objects[(i * CHUNK).min(end)..end];
                encode_part(family, part, shard.as_deref(), i == 0)
            })
        });
        std::iter::once(head)
            .chain(std::iter::once(discovered))
            .chain(families)
            .chain(std::iter::once("# EOF\n".to_string()))
    }
}

/// A registry whose every series says `shard="NAME"` when there is a shard.
fn registry(shard: Option<&str>) -> Registry {
    match shard {
        Some(s) => Registry::with_labels(
            [(
                std::borrow::Cow::Borrowed("shard"),
                std::borrow::Cow::Owned(s.to_string()),
            )]
            .into_iter(),
        ),
        None => Registry::default(),
    }
}

/// `bbconn_discovered_connections{source,ready}`: how many generated connections each
/// discovery source has, Ready or not. Both sources always appear, so an alert on zero works.
fn encode_discovered(objects: &[Arc<Guarded>], shard: Option<&str>) -> String {
    let mut counts: std::collections::BTreeMap<(String, &'static str), i64> = ["argocd", "flux"]
        .into_iter()
        .flat_map(|s| [((s.to_string(), "true"), 0), ((s.to_string(), "false"), 0)])
        .collect();
    for w in objects {
        let Some(source) = w
            .labels()
            .get(crate::operator::discovery::apply::DISCOVERED_FROM)
        else {
            continue;
        };
        let ready =
            w.0.as_ref()
                .ok()
                .and_then(|c| c.status.as_ref())
                .and_then(|s| s.condition_state("Ready"))
                .is_some_and(|(s, _)| s == "True");
        *counts
            .entry((source.clone(), if ready { "true" } else { "false" }))
            .or_default() += 1;
    }
    let mut registry = registry(shard);
    registry.register_collector(Box::new(DiscoveredCollector(counts)));
    let mut text = String::new();
    if prometheus_client::encoding::text::encode_registry(&mut text, &registry).is_err() {
        return String::new();
    }
    text
}

#[derive(Debug)]
struct DiscoveredCollector(std::collections::BTreeMap<(String, &'static str), i64>);

impl Collector for DiscoveredCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut m = encoder.encode_descriptor(
            "bbconn_discovered_connections",
            "Connections generated by discovery, by source (argocd, flux) and whether they are Ready",
            None,
            MetricType::Gauge,
        )?;
        for ((source, ready), n) in &self.0 {
            ConstGauge::new(*n)
                .encode(m.encode_family(&[("source", source.as_str()), ("ready", *ready)])?)?;
        }
        Ok(())
    }
}

/// Connections per piece of the exposition.
const CHUNK: usize = 200;

/// One family's lines for some connections, encoded by prometheus_client (escaping, the shard
/// label) through a throwaway registry; the descriptor only with the first piece.
fn encode_part(
    family: ConnectionFamily,
    objects: &[Arc<Guarded>],
    shard: Option<&str>,
    first: bool,
) -> String {
    let mut registry = registry(shard);
    registry.register_collector(Box::new(ConnectionCollector {
        family,
        objects: objects.to_vec(),
    }));
    let mut text = String::new();
    if prometheus_client::encoding::text::encode_registry(&mut text, &registry).is_err() {
        return String::new();
    }
    if first {
        text
    } else {
        // Metric lines never start with "# ": only HELP, TYPE and UNIT do.
        text.lines()
            .filter(|l| !l.starts_with("# "))
            .flat_map(|l| [l, "\n"])
            .collect()
    }
}

/// The per-connection gauges, one family at a time.
#[derive(Clone, Copy, Debug)]
enum ConnectionFamily {
    Ready,
    Condition,
    Withheld,
    TokenExpiry,
    CertificateExpiry,
}

impl ConnectionFamily {
    const ALL: [ConnectionFamily; 5] = [
        ConnectionFamily::Ready,
        ConnectionFamily::Condition,
        ConnectionFamily::Withheld,
        ConnectionFamily::TokenExpiry,
        ConnectionFamily::CertificateExpiry,
    ];
}

/// Gauges from the cache, at scrape time.
#[derive(Debug)]
struct ConnectionCollector {
    family: ConnectionFamily,
    objects: Vec<Arc<Guarded>>,
}

fn parse_ts(s: &str) -> Option<i64> {
    s.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

/// When something of a connection expires (Unix seconds), if it is known.
type Expiry = fn(&BitbucketConnection) -> Option<i64>;

fn token_expiry(o: &BitbucketConnection) -> Option<i64> {
    o.status
        .as_ref()?
        .credential
        .as_ref()?
        .expires_at
        .as_deref()
        .and_then(parse_ts)
}

fn certificate_expiry(o: &BitbucketConnection) -> Option<i64> {
    parse_ts(&o.status.as_ref()?.certificate.as_ref()?.not_after)
}

impl Collector for ConnectionCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let name = |o: &BitbucketConnection| (o.namespace().unwrap_or_default(), o.name_any());
        let objects: Vec<&BitbucketConnection> = self
            .objects
            .iter()
            .filter_map(|w| w.0.as_ref().ok())
            .collect();
        match self.family {
            ConnectionFamily::Ready => {
                let mut m = encoder.encode_descriptor(
                    "bbconn_connection_ready",
                    "1 when the connection's Ready condition is True",
                    None,
                    MetricType::Gauge,
                )?;
                for o in &objects {
                    let (ns, n) = name(o);
                    let ready = o
                        .status
                        .as_ref()
                        .and_then(|s| s.condition_state("Ready"))
                        .is_some_and(|(s, _)| s == "True");
                    ConstGauge::new(i64::from(ready))
                        .encode(m.encode_family(&[("namespace", ns), ("name", n)])?)?;
                }
            }
            ConnectionFamily::Condition => {
                let mut m = encoder.encode_descriptor(
                    "bbconn_connection_condition",
                    "One-hot over each condition's status (True, False, Unknown), labelled with its reason",
                    None,
                    MetricType::Gauge,
                )?;
                for o in &objects {
                    let (ns, n) = name(o);
                    for (type_, state, reason) in o.status.iter().flat_map(|s| s.condition_states())
                    {
                        for status in ["True", "False", "Unknown"] {
                            let labels = [
                                ("namespace", ns.as_str()),
                                ("name", n.as_str()),
                                ("type", type_),
                                ("status", status),
                                ("reason", reason),
                            ];
                            ConstGauge::new(i64::from(state == status))
                                .encode(m.encode_family(&labels)?)?;
                        }
                    }
                }
            }
            ConnectionFamily::Withheld => {
                let mut m = encoder.encode_descriptor(
                    "bbconn_credential_withheld",
                    "1 while bbconn does not send the connection's credential, which Bitbucket rejected, until the Secret, the spec or bbconn.dev/requested-at changes",
                    None,
                    MetricType::Gauge,
                )?;
                for o in &objects {
                    let (ns, n) = name(o);
                    let withheld = o
                        .status
                        .as_ref()
                        .and_then(|s| s.credential.as_ref())
                        .is_some_and(|c| c.withheld_since.is_some());
                    ConstGauge::new(i64::from(withheld))
                        .encode(m.encode_family(&[("namespace", ns), ("name", n)])?)?;
                }
            }
            ConnectionFamily::TokenExpiry | ConnectionFamily::CertificateExpiry => {
                let (metric, help, get): (&str, &str, Expiry) = if matches!(
                    self.family,
                    ConnectionFamily::TokenExpiry
                ) {
                    (
                        "bbconn_token_expiry_timestamp_seconds",
                        "When the connection's token expires (Unix seconds), where Bitbucket or the Secret's bbconn.dev/expires-at tells",
                        token_expiry,
                    )
                } else {
                    (
                        "bbconn_certificate_expiry_timestamp_seconds",
                        "When the server's certificate expires (Unix seconds)",
                        certificate_expiry,
                    )
                };
                let mut m = encoder.encode_descriptor(metric, help, None, MetricType::Gauge)?;
                for o in &objects {
                    if let Some(ts) = get(o) {
                        let (ns, n) = name(o);
                        ConstGauge::new(ts)
                            .encode(m.encode_family(&[("namespace", ns), ("name", n)])?)?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::{reflector, watcher};

    fn connection(i: usize) -> Guarded {
        DeserializeGuard(Ok(serde_json::from_value(serde_json::json!({
            "apiVersion": "bbconn.dev/v1alpha1", "kind": "BitbucketConnection",
            "metadata": {"name": format!("c{i}"), "namespace": "team"},
            "spec": {"flavor": "Cloud", "auth": {"method": "AccessToken", "secretRef": {"name": "t"}}},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "AllChecksPassed",
                "message": "ok", "lastTransitionTime": "2026-12-03T10:00:00Z"}]}
        }))
        .unwrap()))
    }

    #[test]
    fn a_large_fleet_is_exposed_in_pieces_that_join_into_one_valid_exposition() {
        let (reader, mut writer) = reflector::store::<Guarded>();
        let n = CHUNK * 2 + 50;
        for i in 0..n {
            writer.apply_watcher_event(&watcher::Event::Apply(connection(i)));
        }
        let metrics = Metrics::for_shard(Some(reader), Some("east"));
        let pieces: Vec<String> = metrics.chunks().collect();
        assert!(pieces.len() > 5, "{} pieces", pieces.len());
        let text = metrics.encode();
        let lines: Vec<&str> = text.lines().collect();
        let count = |p: &str| lines.iter().filter(|l| l.starts_with(p)).count();
        assert_eq!(count("# TYPE bbconn_connection_ready gauge"), 1);
        assert_eq!(count("bbconn_connection_ready{"), n);
        assert_eq!(count("bbconn_connection_condition{"), n * 3);
        assert_eq!(count("# EOF"), 1);
        assert_eq!(lines.last(), Some(&"# EOF"));
        assert!(
            lines
                .iter()
                .filter(|l| !l.starts_with('#'))
                .all(|l| l.contains("shard=\"east\"")),
            "every series says its shard"
        );
        // Each family's lines are contiguous, as OpenMetrics requires.
        let families: Vec<&str> = lines
            .iter()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split(['{', ' ']).next().unwrap_or_default())
            .collect();
        let mut seen = Vec::new();
        for f in families {
            if seen.last() != Some(&f) {
                assert!(!seen.contains(&f), "{f} is split");
                seen.push(f);
            }
        }
    }
}
