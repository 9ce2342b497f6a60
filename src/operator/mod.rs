//! `bbconn run`: the controller.
//!
//! Watches BitbucketConnections (tolerating objects that cannot be read), and the metadata of
//! Secrets and ConfigMaps (never their data: what a connection references is fetched when it is
//! checked), and re-checks a connection at once when something it references changes. One replica
//! reconciles at a time, chosen by a Lease.

pub mod leader;
pub mod reconcile;
pub mod refcache;

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
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use leader::{Elector, LeaderConfig};
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
    #[arg(long, default_value = "bbconn-leader")]
    pub lease_name: String,
    /// This replica's name in the Lease (default: POD_NAME, else the host name and process id).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Seconds another replica waits for an unrenewed Lease.
    #[arg(long, default_value_t = 15)]
    pub lease_duration: u64,
    /// Connections checked at once.
    #[arg(long, default_value_t = 256)]
    pub concurrency: u16,
    /// Seconds for which connections with the same credential, server and requirements share
    /// one set of Bitbucket requests.
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
    #[error("lost the leader Lease; exiting so a fresh process can wait for it")]
    LostLease,
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
                method: crate::api::AuthMethod::AccessToken,
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
    let streams = apis.into_iter().map(|api| {
        watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed()
    });
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
    futures::stream::select_all(apis.into_iter().map(|api| {
        let cache = cache.clone();
        watcher(api, watcher::Config::default())
            .default_backoff()
            .map_ok(move |event| {
                let note = |o: &PartialObjectMeta<K>, deleted: bool| {
                    let rv = if deleted { None } else { o.resource_version() };
                    cache.observe(kind, &o.namespace().unwrap_or_default(), &o.name_any(), rv);
                };
                match &event {
                    watcher::Event::Apply(o) | watcher::Event::InitApply(o) => note(o, false),
                    watcher::Event::Delete(o) => note(o, true),
                    watcher::Event::Init | watcher::Event::InitDone => {}
                }
                event
            })
            .touched_objects()
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
    let (reader, writer) = reflector::store::<BitbucketConnection>();
    let metrics = Metrics::new(Some(reader.clone()));
    let ready = Arc::new(AtomicBool::new(false));
    serve_http(args.metrics_addr, metrics.clone(), ready.clone()).await?;
    match client.apiserver_version().await {
        Ok(v) => {
            tracing::info!(version = %v.git_version, "connected to the API server");
            ready.store(true, Ordering::Relaxed);
        }
        Err(e) => tracing::warn!(error = %e, "the API server does not answer yet"),
    }

    let identity = args
        .identity
        .clone()
        .unwrap_or_else(|| format!("{}-{}", hostname(), std::process::id()));
    let elector = Elector::new(
        client.clone(),
        LeaderConfig {
            namespace: args.lease_namespace.clone(),
            name: args.lease_name.clone(),
            identity: identity.clone(),
            lease_duration: Duration::from_secs(args.lease_duration.max(2)),
            renew_every: Duration::from_secs((args.lease_duration / 3).max(1)),
            retry_every: Duration::from_secs((args.lease_duration / 5).max(1)),
        },
    );
    let shutdown =
        futures::future::FutureExt::shared(futures::future::FutureExt::boxed(shutdown_signal()));
    if args.leader_election {
        tracing::info!(identity = %identity, lease = %args.lease_name, "waiting for the leader Lease");
        tokio::select! {
            _ = elector.acquire() => {},
            _ = shutdown.clone() => return Ok(()),
        }
        tracing::info!(identity = %identity, "holding the leader Lease");
    }
    ready.store(true, Ordering::Relaxed);
    metrics.leader.set(1);

    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "bbconn".into(),
            instance: Some(identity.clone()),
        },
    );
    let env = Arc::new(
        Env::new(args.net.net_config()).with_sharing(Duration::from_secs(args.share_window)),
    );
    let refs = Arc::new(refcache::RefCache::default());
    let ctx = Arc::new(reconcile::Ctx {
        refs: refs.clone(),
        client: client.clone(),
        env,
        recorder: recorder.clone(),
        metrics: metrics.clone(),
        failures: Default::default(),
        reconciling_after: Duration::from_millis(500),
    });
    let stream = connections(
        client.clone(),
        &args.namespaces,
        metrics.clone(),
        Arc::new(recorder),
    )
    .reflect(writer)
    .applied_objects();
    let (s1, s2) = (reader.clone(), reader.clone());
    let (lost_tx, lost_rx) = tokio::sync::oneshot::channel::<()>();
    let stop = {
        let shutdown = shutdown.clone();
        async move {
            tokio::select! {
                _ = shutdown => {},
                _ = lost_rx => {},
            }
        }
    };
    let controller = Controller::for_stream(stream, reader)
        .with_config(ControllerConfig::default().concurrency(args.concurrency))
        .watches_stream(
            metadata_of::<Secret>(
                &client,
                &args.namespaces,
                refs.clone(),
                refcache::Kind::Secret,
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
                &client,
                &args.namespaces,
                refs.clone(),
                refcache::Kind::ConfigMap,
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
        .graceful_shutdown_on(stop)
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "controller");
            }
        });
    let lost = Arc::new(AtomicBool::new(false));
    let holder = {
        let lost = lost.clone();
        let enabled = args.leader_election;
        let elector = &elector;
        async move {
            if enabled {
                elector.hold().await;
                lost.store(true, Ordering::SeqCst);
                let _ = lost_tx.send(());
            } else {
                futures::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = controller => {},
        _ = holder => {},
    }
    metrics.leader.set(0);
    if lost.load(Ordering::SeqCst) {
        return Err(RunError::LostLease);
    }
    if args.leader_election {
        elector.release().await;
        tracing::info!("released the leader Lease");
    }
    Ok(())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "bbconn".into())
}
