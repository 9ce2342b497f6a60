//! `bbconn run`: the controller.
//!
//! Watches BitbucketConnections (tolerating objects that cannot be read), and the metadata of
//! Secrets and ConfigMaps (never their data: what a connection references is fetched when it is
//! checked), and re-checks a connection at once when something it references changes. One replica
//! reconciles at a time, chosen by a Lease.

pub mod leader;
pub mod reconcile;
pub mod refcache;
pub mod watch;

use crate::api::{BitbucketConnection, BitbucketConnectionSpec, CaBundleKind};
use crate::cli::NetArgs;
use crate::engine::Env;
use crate::telemetry::Metrics;
use futures::{Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, ApiResource, DynamicObject};
use kube::core::PartialObjectMeta;
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
    /// Connections checked at once.
    #[arg(long, default_value_t = 256)]
    pub concurrency: u16,
    /// Connections with the same credential, server and requirements share one set of
    /// Bitbucket requests per interval (a verdict is never older than its connection's
    /// interval); a result that calls for a retry is shared for at most this many seconds (4 at
    /// most, less than the shortest retry backoff).
    #[arg(long, default_value_t = 10)]
    pub share_window: u64,
    #[command(flatten)]
    pub net: NetArgs,
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

/// A stand-in for an object that could not be read, so the cache forgets it (only its name
/// matters to a Delete).
fn placeholder(metadata: kube::api::ObjectMeta) -> BitbucketConnection {
    BitbucketConnection {
        metadata,
        spec: BitbucketConnectionSpec {
            flavor: crate::api::Flavor::Cloud,
            url: None,
            auth: crate::api::Auth {
                method: Some(crate::api::AuthMethod::AccessToken),
                secret_ref: crate::api::SecretRef::default(),
                token_url: None,
            },
            profiles: Vec::new(),
            requirements: None,
            tls: None,
            network: None,
            git: None,
            interval: None,
            expiry_warning: None,
        },
        status: None,
    }
}

/// What the cache keeps of a connection: no managed fields, no annotations but requested-at, a
/// compacted status. 10,000 connections must fit in tens of MiB.
fn slim(mut c: BitbucketConnection) -> BitbucketConnection {
    c.metadata.managed_fields = None;
    c.metadata.labels = None;
    if let Some(a) = c.metadata.annotations.as_mut() {
        a.retain(|k, _| k == reconcile::REQUESTED_AT);
    }
    c.status = c.status.as_ref().map(crate::status::compact);
    c
}

/// BitbucketConnections as typed objects; one that cannot be read is reported and dropped, and
/// does not break the watch (a typed watch would fail its whole list on it).
fn connections(
    client: Client,
    namespaces: &[String],
    selector: &str,
    metrics: Arc<Metrics>,
    recorder: Arc<Recorder>,
) -> impl Stream<Item = Result<watcher::Event<BitbucketConnection>, watcher::Error>> + Send + 'static
{
    let ar = ApiResource::erase::<BitbucketConnection>(&());
    let apis: Vec<Api<DynamicObject>> = if namespaces.is_empty() {
        vec![Api::all_with(client, &ar)]
    } else {
        namespaces
            .iter()
            .map(|ns| Api::namespaced_with(client.clone(), ns, &ar))
            .collect()
    };
    let config = watcher::Config::default().labels(selector);
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
    let convert =
        move |obj: DynamicObject| -> Result<BitbucketConnection, Box<kube::api::ObjectMeta>> {
            let meta = obj.metadata.clone();
            let reference = obj.object_ref(&ar);
            obj.try_parse::<BitbucketConnection>().map(slim).map_err(|e| {
            metrics.invalid_objects.inc();
            tracing::warn!(namespace = ?meta.namespace, name = ?meta.name, error = %e, "skipping a BitbucketConnection that cannot be read");
            let recorder = recorder.clone();
            let note = format!("bbconn cannot read this object, so it is not checked: {e}");
            tokio::spawn(async move {
                let ev = kube::runtime::events::Event {
                    type_: kube::runtime::events::EventType::Warning,
                    reason: "InvalidObject".into(),
                    note: Some(note),
                    action: "Read".into(),
                    secondary: None,
                };
                let _ = recorder.publish(&ev, &reference).await;
            });
            Box::new(meta)
        })
        };
    futures::stream::select_all(streams).map_ok(move |event| match event {
        watcher::Event::Apply(o) => match convert(o) {
            Ok(c) => watcher::Event::Apply(c),
            // If an earlier version was readable, the cache forgets it.
            Err(meta) => watcher::Event::Delete(placeholder(*meta)),
        },
        watcher::Event::InitApply(o) => match convert(o) {
            Ok(c) => watcher::Event::InitApply(c),
            Err(meta) => watcher::Event::Delete(placeholder(*meta)),
        },
        watcher::Event::Delete(o) => watcher::Event::Delete(placeholder(o.metadata)),
        watcher::Event::Init => watcher::Event::Init,
        watcher::Event::InitDone => watcher::Event::InitDone,
    })
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
    store: &Store<BitbucketConnection>,
    kind: CaBundleKind,
    ns: &str,
    name: &str,
) -> Vec<ObjectRef<BitbucketConnection>> {
    store
        .state()
        .iter()
        .filter(|c| c.namespace().as_deref() == Some(ns))
        .filter(|c| {
            let secret = kind == CaBundleKind::Secret && c.spec.auth.secret_ref.name == name;
            let ca = c
                .spec
                .tls
                .as_ref()
                .and_then(|t| t.ca_bundle_ref.as_ref())
                .is_some_and(|r| r.kind == kind && r.name == name);
            secret || ca
        })
        .map(|c| ObjectRef::from_obj(c.as_ref()))
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
                    (
                        [(
                            header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        m.encode(),
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

pub async fn run(args: RunArgs) -> Result<(), RunError> {
    let client = Client::try_default().await.map_err(RunError::Client)?;
    let metrics = Metrics::for_shard(None, args.shard.as_deref());
    let ready = Arc::new(AtomicBool::new(false));
    serve_http(args.metrics_addr, metrics.clone(), ready.clone()).await?;
    {
        // Started before the API server answers: wait for it, do not exit.
        let (client, ready) = (client.clone(), ready.clone());
        tokio::spawn(async move {
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
        });
    }

    let identity = args
        .identity
        .clone()
        .unwrap_or_else(|| format!("{}-{}", hostname(), std::process::id()));
    let lease = lease_name(args.lease_name.as_deref(), args.shard.as_deref());
    let lease_duration = Duration::from_secs(args.lease_duration.max(2));
    let (renew_deadline, renew_every, retry_every) = LeaderConfig::timings(lease_duration);
    // Its own connections: a renewal must not queue behind hundreds of status writes.
    let lease_client = Client::try_default().await.map_err(RunError::Client)?;
    let elector = Elector::new(
        lease_client,
        LeaderConfig {
            namespace: args.lease_namespace.clone(),
            name: lease.clone(),
            identity: identity.clone(),
            lease_duration,
            renew_deadline,
            renew_every,
            retry_every,
        },
    );
    let shutdown =
        futures::future::FutureExt::shared(futures::future::FutureExt::boxed(shutdown_signal()));
    // Shared across terms: what was learnt from Bitbucket stays valid when leadership moves.
    let env = Arc::new(
        Env::new(args.net.net_config()).with_sharing(Duration::from_secs(args.share_window)),
    );
    let refs = Arc::new(refcache::RefCache::default());
    loop {
        let term = if args.leader_election {
            tracing::info!(identity = %identity, lease = %lease, "waiting for the leader Lease");
            tokio::select! {
                t = elector.acquire() => t,
                _ = shutdown.clone() => return Ok(()),
            }
        } else {
            Arc::new(Term::unbounded())
        };
        if args.leader_election {
            tracing::info!(identity = %identity, lease = %lease, "holding the leader Lease");
        }
        metrics.leader.set(1);
        let controller = run_term(
            &args,
            &client,
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
        // On a lost Lease the controller is dropped, which cancels reconciles in flight; the
        // term has ended before, so none of them writes.
        let stepped_down = tokio::select! {
            _ = controller => false,
            _ = lost => true,
        };
        metrics.leader.set(0);
        metrics.set_store(None);
        if !stepped_down {
            if args.leader_election {
                elector.release().await;
                tracing::info!("released the leader Lease");
            }
            return Ok(());
        }
        // Keep the process: campaign again.
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
    shutdown: futures::future::Shared<futures::future::BoxFuture<'static, ()>>,
) {
    let (reader, writer) = reflector::store::<BitbucketConnection>();
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
        reconciling_after: Duration::from_millis(500),
        term,
    });
    let selector = shard_selector(args.shard.as_deref());
    let stream = watch::settled(
        connections(
            client.clone(),
            &args.namespaces,
            &selector,
            metrics.clone(),
            Arc::new(recorder),
        ),
        writer,
        reader.clone(),
    );
    let (s1, s2) = (reader.clone(), reader.clone());
    Controller::for_stream(stream, reader)
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
        })
        .await;
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "bbconn".into())
}
