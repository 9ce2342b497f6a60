//! Metrics as docs/design/contract.md names them. Connection gauges are computed at scrape time from the
//! operator's cache, so a deleted connection leaves no stale series (cert-manager's approach);
//! counters and the histogram are fed by the reconciler.

use crate::api::BitbucketConnection;
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
    connections: Arc<RwLock<Option<Store<BitbucketConnection>>>>,
}

impl Metrics {
    pub fn new(store: Option<Store<BitbucketConnection>>) -> Arc<Metrics> {
        Metrics::for_shard(store, None)
    }

    /// With `shard`, every series is labelled `shard="NAME"`, so several shards' metrics can be
    /// told apart and summed.
    pub fn for_shard(
        store: Option<Store<BitbucketConnection>>,
        shard: Option<&str>,
    ) -> Arc<Metrics> {
        let mut registry = match shard {
            Some(s) => Registry::with_labels(
                [(
                    std::borrow::Cow::Borrowed("shard"),
                    std::borrow::Cow::Owned(s.to_string()),
                )]
                .into_iter(),
            ),
            None => Registry::default(),
        };
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
        registry.register_collector(Box::new(ConnectionCollector {
            store: connections.clone(),
        }));
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
    pub fn set_store(&self, store: Option<Store<BitbucketConnection>>) {
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

    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Gauges from the cache, at scrape time.
#[derive(Debug)]
struct ConnectionCollector {
    store: Arc<RwLock<Option<Store<BitbucketConnection>>>>,
}

fn parse_ts(s: &str) -> Option<i64> {
    s.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

impl Collector for ConnectionCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let objects = self
            .store
            .read()
            .ok()
            .and_then(|s| s.as_ref().map(|s| s.state()))
            .unwrap_or_default();
        let name = |o: &BitbucketConnection| (o.namespace().unwrap_or_default(), o.name_any());
        {
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
                    .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
                    .is_some_and(|c| c.status == "True");
                ConstGauge::new(i64::from(ready))
                    .encode(m.encode_family(&[("namespace", ns), ("name", n)])?)?;
            }
        }
        {
            let mut m = encoder.encode_descriptor(
                "bbconn_connection_condition",
                "One-hot over each condition's status (True, False, Unknown), labelled with its reason",
                None,
                MetricType::Gauge,
            )?;
            for o in &objects {
                let (ns, n) = name(o);
                for c in o.status.iter().flat_map(|s| s.conditions.iter()) {
                    for status in ["True", "False", "Unknown"] {
                        let labels = [
                            ("namespace", ns.clone()),
                            ("name", n.clone()),
                            ("type", c.type_.clone()),
                            ("status", status.to_string()),
                            ("reason", c.reason.clone()),
                        ];
                        ConstGauge::new(i64::from(c.status == status))
                            .encode(m.encode_family(&labels)?)?;
                    }
                }
            }
        }
        {
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
        type Getter = fn(&BitbucketConnection) -> Option<i64>;
        let expiries: [(&str, &str, Getter); 2] = [
            (
                "bbconn_token_expiry_timestamp_seconds",
                "When the connection's token expires (Unix seconds), where Bitbucket or the Secret's bbconn.dev/expires-at tells",
                |o| {
                    o.status
                        .as_ref()?
                        .credential
                        .as_ref()?
                        .expires_at
                        .as_deref()
                        .and_then(parse_ts)
                },
            ),
            (
                "bbconn_certificate_expiry_timestamp_seconds",
                "When the server's certificate expires (Unix seconds)",
                |o| parse_ts(&o.status.as_ref()?.certificate.as_ref()?.not_after),
            ),
        ];
        for (metric, help, get) in expiries {
            let mut m = encoder.encode_descriptor(metric, help, None, MetricType::Gauge)?;
            for o in &objects {
                if let Some(ts) = get(o) {
                    let (ns, n) = name(o);
                    ConstGauge::new(ts)
                        .encode(m.encode_family(&[("namespace", ns), ("name", n)])?)?;
                }
            }
        }
        Ok(())
    }
}
