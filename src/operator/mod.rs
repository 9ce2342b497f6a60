//! `bbconn run`: the controller.
//!
//! Watches BitbucketConnections (tolerating objects that cannot be read), and the metadata of
//! Secrets and ConfigMaps (never their data: what a connection references is fetched when it is
//! checked), and re-checks a connection at once when something it references changes. One replica
//! reconciles at a time, chosen by a Lease.

pub mod discovery;
pub mod leader;
pub mod reconcile;
pub mod refcache;
pub mod watch;

use crate::api::{BitbucketConnection, CaBundleKind};
use crate::engine::Env;
use crate::net_args::NetArgs;
use crate::telemetry::Metrics;
use futures::{Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::Api;
use kube::core::{DeserializeGuard, PartialObjectMeta};
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use leader::{Elector, LeaderConfig, Term};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use thiserror::Error;

#[derive(clap::Args, Clone, Debug)]
pub struct RunArgs {
    /// Where /metrics, /healthz and /readyz are served.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Watch only these namespaces (repeatable); default: all.
    #[arg(long = "watch-namespace")]
    pub namespaces: Vec<String>,
    /// Elect a leader on a Lease, so several replicas are safe.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Namespace of the Lease (default: the pod's, from POD_NAMESPACE, else "default").
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// Name of the Lease (default: bbconn-leader, or bbconn-leader-SHARD with --shard).
    #[arg(long)]
    pub lease_name: Option<String>,
    /// Reconcile only connections labelled bbconn.dev/shard=NAME; without it, only connections
    /// without that label.
    #[arg(long, env = "BBCONN_SHARD", value_parser = parse_shard)]
    pub shard: Option<String>,
    /// This replica's name in the Lease (default: POD_NAME, else the host name and process id).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Seconds another replica waits for an unrenewed Lease.
    #[arg(long, default_value_t = 15)]
    pub lease_duration: u64,
    /// The Deployment (in the Lease's namespace) the replicas belong to: the Lease is owned by
    /// it, so deleting the Deployment (helm uninstall, a shard removed) deletes the Lease too,
    /// even one a terminating replica wrote again.
    #[arg(long, value_name = "DEPLOYMENT")]
    pub lease_owner: Option<String>,
    /// Connections checked at once. Each check in flight holds its task and its API-server
    /// connection; 64 keep up with thousands of changes per minute.
    #[arg(long, default_value_t = 64)]
    pub concurrency: u16,
    /// Connections with the same credential, server and requirements share one set of
    /// Bitbucket requests per interval (a verdict is never older than its connection's
    /// interval); a result that calls for a retry is shared for at most this many seconds (4 at
    /// most, less than the shortest retry backoff).
    #[arg(long, default_value_t = 10)]
    pub share_window: u64,
    #[command(flatten)]
    pub net: NetArgs,
    #[command(flatten)]
    pub discovery: discovery::DiscoveryArgs,
}

#[derive(Debug, Error)]
pub enum RunError {
    #[error("no Kubernetes client (in-cluster config or KUBECONFIG): {0}")]
    Client(#[source] kube::Error),
    #[error("cannot serve metrics on {addr}: {source}")]
    Metrics {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// The label that assigns a connection to a shard.
pub const SHARD_LABEL: &str = "bbconn.dev/shard";

/// A shard name must be a label value (it is matched against one, and names the Lease).
fn parse_shard(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 50
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(s.to_string())
    } else {
        Err("a shard name is 1-50 lowercase letters, digits and '-', starting and ending with a letter or digit".into())
    }
}

/// The label selector of this operator's connections (CONTRACT.md, "Sharding").
pub fn shard_selector(shard: Option<&str>) -> String {
    match shard {
        Some(s) => format!("{SHARD_LABEL}={s}"),
        None => format!("!{SHARD_LABEL}"),
    }
}

/// Each shard elects its own leader.
pub fn lease_name(explicit: Option<&str>, shard: Option<&str>) -> String {
    match (explicit, shard) {
        (Some(n), _) => n.to_string(),
        (None, Some(s)) => format!("bbconn-leader-{s}"),
        (None, None) => "bbconn-leader".to_string(),
    }
}

/// What the cache keeps of a connection: no managed fields, no labels but discovered-from, no
/// annotations but requested-at, a compacted status. 10,000 connections must fit in tens of MiB.
fn slim(w: &mut Watched) {
    let meta = w.meta_mut();
    meta.managed_fields = None;
    // Only the label the discovered-connections gauge counts by, and the one discovery needs
    // besides to tell its connections (which it reads from this cache) from a person's.
    if let Some(l) = meta.labels.as_mut() {
        l.retain(|k, _| {
            k == discovery::apply::DISCOVERED_FROM || k == discovery::apply::MANAGED_BY
        });
    }
    if meta.labels.as_ref().is_some_and(|l| l.is_empty()) {
        meta.labels = None;
    }
    if let Some(a) = meta.annotations.as_mut() {
        a.retain(|k, _| k == reconcile::REQUESTED_AT);
    }
    if let Ok(c) = w.0.as_mut() {
        c.status = c.status.as_ref().map(crate::status::compact);
    }
}

/// A watched BitbucketConnection: one that cannot be read (an older or hand-edited object the
/// schema no longer fits) is kept as its metadata and reported by its reconcile, and does not
/// break the watch, which a plain typed list would fail on.
pub type Watched = DeserializeGuard<BitbucketConnection>;

/// BitbucketConnections in the watched namespaces, slimmed for the cache.
fn connections(
    client: Client,
    namespaces: &[String],
    selector: &str,
    metrics: Arc<Metrics>,
) -> impl Stream<Item = Result<watcher::Event<Watched>, watcher::Error>> + Send + 'static {
    let apis: Vec<Api<Watched>> = if namespaces.is_empty() {
        vec![Api::all(client)]
    } else {
        namespaces
            .iter()
            .map(|ns| Api::namespaced(client.clone(), ns))
            .collect()
    };
    // Small pages: a page is held whole while it is decoded.
    let config = watcher::Config::default().labels(selector).page_size(100);
    let streams: Vec<_> = apis
        .into_iter()
        .map(|api| {
            let config = config.clone();
            let m = metrics.clone();
            watch::resilient(
                "BitbucketConnections",
                move || watcher(api.clone(), config.clone()),
                move || {
                    m.watch_errors.inc();
                },
            )
            .boxed()
        })
        .collect();
    futures::stream::select_all(streams).map_ok(|event| event.modify(slim))
}

/// Metadata-only watches of Secrets or ConfigMaps, in the watched namespaces.
fn metadata_of<K>(
    client: &Client,
    namespaces: &[String],
    cache: Arc<refcache::RefCache>,
    kind: refcache::Kind,
    metrics: Arc<Metrics>,
) -> impl Stream<Item = Result<PartialObjectMeta<K>, watcher::Error>> + Send + 'static
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    // Api<PartialObjectMeta<K>> asks for metadata only: Secret data never reaches this process
    // except when a connection's own Secret is fetched.
    let apis: Vec<Api<PartialObjectMeta<K>>> = if namespaces.is_empty() {
        vec![Api::all(client.clone())]
    } else {
        namespaces
            .iter()
            .map(|ns| Api::namespaced(client.clone(), ns))
            .collect()
    };
    let what = match kind {
        refcache::Kind::Secret => "Secrets",
        refcache::Kind::ConfigMap => "ConfigMaps",
    };
    futures::stream::select_all(apis.into_iter().map(|api| {
        let cache = cache.clone();
        let m = metrics.clone();
        watch::resilient(
            what,
            move || watcher(api.clone(), watcher::Config::default()),
            move || {
                m.watch_errors.inc();
            },
        )
        .map_ok(move |event| {
            // Only news triggers the connections that reference an object: a relist that
            // finds a Secret unchanged must not re-check every connection.
            let news = |o: &PartialObjectMeta<K>, deleted: bool| {
                let rv = if deleted { None } else { o.resource_version() };
                cache.observe(kind, &o.namespace().unwrap_or_default(), &o.name_any(), rv)
            };
            let touched: Vec<PartialObjectMeta<K>> = match event {
                watcher::Event::Apply(o) | watcher::Event::InitApply(o) => {
                    if news(&o, false) {
                        vec![o]
                    } else {
                        Vec::new()
                    }
                }
                watcher::Event::Delete(o) => {
                    if news(&o, true) {
                        vec![o]
                    } else {
                        Vec::new()
                    }
                }
                watcher::Event::Init | watcher::Event::InitDone => Vec::new(),
            };
            futures::stream::iter(touched.into_iter().map(Ok))
        })
        .try_flatten()
        .boxed()
    }))
}

/// The connections that reference a Secret or ConfigMap.
fn referencing(
    store: &Store<Watched>,
    kind: CaBundleKind,
    ns: &str,
    name: &str,
) -> Vec<ObjectRef<Watched>> {
    store
        .state()
        .iter()
        .filter_map(|w| w.0.as_ref().ok())
        .filter(|c| c.namespace().as_deref() == Some(ns))
        .filter(|c| {
            let spec = &c.spec;
            let secret = kind == CaBundleKind::Secret
                && (spec.auth_secret() == Some(name) || spec.ssh_secret() == Some(name));
            let known_hosts = spec
                .known_hosts_ref()
                .is_some_and(|r| r.kind == kind && r.name == name);
            let ca = c
                .spec
                .tls
                .as_ref()
                .and_then(|t| t.ca_bundle_ref.as_ref())
                .is_some_and(|r| r.kind == kind && r.name == name);
            secret || ca || known_hosts
        })
        .map(|c| ObjectRef::new(&c.name_any()).within(ns))
        .collect()
}

async fn serve_http(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
) -> Result<(), RunError> {
    use axum::http::{StatusCode, header};
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| RunError::Metrics { addr, source })?;
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let m = metrics.clone();
                async move {
                    // Streamed piece by piece: the whole text of a large fleet is tens of MB.
                    let pieces = futures::stream::iter(
                        m.chunks()
                            .map(|p| Ok::<_, std::convert::Infallible>(bytes::Bytes::from(p))),
                    );
                    (
                        [(
                            header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        axum::body::Body::from_stream(pieces),
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let r = ready.load(Ordering::Relaxed);
                async move {
                    if r {
                        (StatusCode::OK, "ok")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "starting")
                    }
                }
            }),
        );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the metrics server stopped");
        }
    });
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = tokio::signal::ctrl_c() => {},
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `bbconn run`: what the process starts, in order.
pub async fn run(args: RunArgs) -> Result<(), RunError> {
    let client = Client::try_default().await.map_err(RunError::Client)?;
    let metrics = Metrics::for_shard(None, args.shard.as_deref());
    // /metrics, /healthz, and /readyz once the API server has answered.
    let ready = Arc::new(AtomicBool::new(false));
    serve_http(args.metrics_addr, metrics.clone(), ready.clone()).await?;
    // Started before the API server answers: wait for it, do not exit.
    tokio::spawn(wait_for_api_server(client.clone(), ready));
    // Shared across terms: what was learnt from Bitbucket stays valid when leadership moves.
    let env = Arc::new(
        Env::new(args.net.net_config()).with_sharing(Duration::from_secs(args.share_window)),
    );
    let refs = Arc::new(refcache::RefCache::default());
    warn_unwatched_discovery(&args);
    let shutdown =
        futures::future::FutureExt::shared(futures::future::FutureExt::boxed(shutdown_signal()));
    // Lead, or wait to: one controller per term as leader, until shutdown.
    let elector = elector(&args).await?;
    lead(&args, &client, elector, env, refs, metrics, shutdown).await;
    Ok(())
}

/// Discovery writes connections in its sources' namespaces: outside --watch-namespace nobody
/// would check them.
fn warn_unwatched_discovery(args: &RunArgs) {
    let d = &args.discovery;
    if !d.enabled() || args.namespaces.is_empty() {
        return;
    }
    let mut unwatched: Vec<&str> = Vec::new();
    if d.discover.contains(&discovery::Consumer::ArgoCd) {
        unwatched.extend(d.argocd_namespaces.iter().map(String::as_str));
    }
    if d.discover.contains(&discovery::Consumer::Flux) {
        if d.flux_namespaces.is_empty() {
            unwatched.push("(every namespace: --discover-flux-namespace lists none)");
        }
        unwatched.extend(d.flux_namespaces.iter().map(String::as_str));
    }
    unwatched.retain(|ns| !args.namespaces.iter().any(|w| w == ns));
    if !unwatched.is_empty() {
        tracing::warn!(namespaces = ?unwatched, "discovery generates connections in namespaces this operator does not watch: they will not be checked; add them to --watch-namespace");
    }
}

async fn wait_for_api_server(client: Client, ready: Arc<AtomicBool>) {
    let mut warned = false;
    loop {
        match client.apiserver_version().await {
            Ok(v) => {
                tracing::info!(version = %v.git_version, "connected to the API server");
                ready.store(true, Ordering::Relaxed);
                return;
            }
            Err(e) if !warned => {
                tracing::warn!(error = %e, "the API server does not answer yet; waiting");
                warned = true;
            }
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn identity(args: &RunArgs) -> String {
    args.identity
        .clone()
        .unwrap_or_else(|| format!("{}-{}", hostname(), std::process::id()))
}

/// This shard's Lease, on a client of its own: a renewal must not queue behind hundreds of
/// status writes.
async fn elector(args: &RunArgs) -> Result<Elector, RunError> {
    let lease_duration = Duration::from_secs(args.lease_duration.max(2));
    let (renew_deadline, renew_every, retry_every) = LeaderConfig::timings(lease_duration);
    let lease_client = Client::try_default().await.map_err(RunError::Client)?;
    Ok(Elector::new(
        lease_client,
        LeaderConfig {
            namespace: args.lease_namespace.clone(),
            name: lease_name(args.lease_name.as_deref(), args.shard.as_deref()),
            identity: identity(args),
            owner: args.lease_owner.clone(),
            lease_duration,
            renew_deadline,
            renew_every,
            retry_every,
        },
    ))
}

type Shutdown = futures::future::Shared<futures::future::BoxFuture<'static, ()>>;

/// How long SIGTERM waits for reconciles in flight (a pod's default grace is 30 s).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Campaign, run the controller while the Lease is held, step down when it is lost, and
/// campaign again; release the Lease on shutdown.
async fn lead(
    args: &RunArgs,
    client: &Client,
    elector: Elector,
    env: Arc<Env>,
    refs: Arc<refcache::RefCache>,
    metrics: Arc<Metrics>,
    shutdown: Shutdown,
) {
    let identity = identity(args);
    let lease = lease_name(args.lease_name.as_deref(), args.shard.as_deref());
    loop {
        let term = if args.leader_election {
            tracing::info!(identity = %identity, lease = %lease, "waiting for the leader Lease");
            tokio::select! {
                t = elector.acquire() => t,
                _ = shutdown.clone() => return,
            }
        } else {
            Arc::new(Term::unbounded())
        };
        if args.leader_election {
            tracing::info!(identity = %identity, lease = %lease, "holding the leader Lease");
        }
        metrics.leader.set(1);
        let controller = run_term(
            args,
            client,
            &identity,
            env.clone(),
            refs.clone(),
            metrics.clone(),
            term.clone(),
            shutdown.clone(),
        );
        let lost = async {
            if args.leader_election {
                elector.hold(&term).await;
            } else {
                futures::future::pending::<()>().await;
            }
        };
        // A graceful shutdown lets reconciles in flight finish, but kube's controller also waits
        // for its cache to have listed once, which never happens while the API server is down:
        // past the grace the process stops anyway.
        let grace = async {
            shutdown.clone().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
            tracing::warn!("reconciles still running after the shutdown grace; stopping");
        };
        // On a lost Lease the controller is dropped, which cancels reconciles in flight; the
        // term has ended before, so none of them writes.
        let stepped_down = tokio::select! {
            _ = controller => false,
            _ = lost => true,
            _ = grace => false,
        };
        metrics.leader.set(0);
        metrics.set_store(None);
        if !stepped_down {
            if args.leader_election {
                elector.release().await;
                tracing::info!("released the leader Lease");
            }
            return;
        }
    }
}

/// The controller for one term as leader, until shutdown.
#[allow(clippy::too_many_arguments)]
async fn run_term(
    args: &RunArgs,
    client: &Client,
    identity: &str,
    env: Arc<Env>,
    refs: Arc<refcache::RefCache>,
    metrics: Arc<Metrics>,
    term: Arc<Term>,
    shutdown: Shutdown,
) {
    let (reader, writer) = reflector::store::<Watched>();
    metrics.set_store(Some(reader.clone()));
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "bbconn".into(),
            instance: Some(identity.to_string()),
        },
    );
    let ctx = Arc::new(reconcile::Ctx {
        refs: refs.clone(),
        client: client.clone(),
        env,
        recorder: recorder.clone(),
        metrics: metrics.clone(),
        failures: Default::default(),
        // Slow means waiting on a timeout: half the shorter of the connect and request
        // timeouts (2.5 s by default). At a fixed 500 ms, a burst of thousands of new
        // connections on a loaded machine crossed it and cost two status writes each, which
        // loaded the API server further (12,080 writes for 10,000 connections, Ready 13 s
        // after the last).
        reconciling_after: Duration::from_millis(
            args.net
                .connect_timeout
                .min(args.net.request_timeout)
                .max(1)
                .saturating_mul(500),
        ),
        term,
    });
    let selector = shard_selector(args.shard.as_deref());
    let stream = watch::settled(
        connections(client.clone(), &args.namespaces, &selector, metrics.clone()),
        writer,
        reader.clone(),
    );
    let (s1, s2) = (reader.clone(), reader.clone());
    // Discovery writes connections only while this replica leads, as reconciles do; it reads
    // which exist from this term's cache where that holds them all (no shard).
    let cache = args
        .shard
        .is_none()
        .then(|| (reader.clone(), args.namespaces.clone()));
    let discovery = async {
        if args.discovery.enabled() {
            discovery::run(client.clone(), args.discovery.clone(), cache).await;
        }
        futures::future::pending::<()>().await;
    };
    let controller = Controller::for_stream(stream, reader)
        .with_config(ControllerConfig::default().concurrency(args.concurrency))
        .watches_stream(
            metadata_of::<Secret>(
                client,
                &args.namespaces,
                refs.clone(),
                refcache::Kind::Secret,
                metrics.clone(),
            ),
            move |s| {
                referencing(
                    &s1,
                    CaBundleKind::Secret,
                    &s.namespace().unwrap_or_default(),
                    &s.name_any(),
                )
            },
        )
        .watches_stream(
            metadata_of::<ConfigMap>(
                client,
                &args.namespaces,
                refs.clone(),
                refcache::Kind::ConfigMap,
                metrics.clone(),
            ),
            move |c| {
                referencing(
                    &s2,
                    CaBundleKind::ConfigMap,
                    &c.namespace().unwrap_or_default(),
                    &c.name_any(),
                )
            },
        )
        .graceful_shutdown_on(shutdown)
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "controller");
            }
        });
    // The controller ends the term (shutdown); discovery ends with it.
    tokio::select! {
        _ = controller => {}
        _ = discovery => {}
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "bbconn".into())
}
