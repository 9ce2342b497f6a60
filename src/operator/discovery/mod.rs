//! Discovery (opt-in, `bbconn run --discover argocd,flux`): a BitbucketConnection for every
//! Bitbucket connection Argo CD and Flux already have, in the source's namespace, following
//! it (ownerReference), written under a field manager of its own.
//!
//! Each source runs on its own: watches of its objects feed a store, and any change (or a
//! periodic resync) recomputes what it wants and applies the difference. Argo CD's Secrets are
//! cached without their credentials' values.

pub mod apply;
pub mod argocd;
pub mod desired;
pub mod flux;
pub mod url;

use crate::operator::{Watched, watch};
use desired::Source;
use futures::{FutureExt, Stream, StreamExt, TryStreamExt};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::reflector::{self, Store, store::Writer};
use kube::runtime::watcher;
use kube::{Client, Resource};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use url::DataCenterHost;

/// A source object with this annotation set to "false" is not discovered.
pub const OPT_OUT: &str = "bbconn.dev/discover";

/// How long changes settle before a pass: a burst of edits costs one pass.
const SETTLE: Duration = Duration::from_millis(300);
/// A pass also runs this often, so a connection deleted by hand comes back.
const RESYNC: Duration = Duration::from_secs(60);
/// How often, at most, discovery asks whether ImageUpdateAutomations are served while they are
/// not: each pass asked (the API server's group list), and a burst of GitRepository changes
/// runs a pass every few hundred milliseconds.
const AUTOMATION_LOOK: Duration = Duration::from_secs(10);
/// How long a source's optional watch (Applications, ImageUpdateAutomations) may take to list
/// before passes run without it.
const OPTIONAL_WAIT: Duration = Duration::from_secs(10);

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consumer {
    #[value(name = "argocd")]
    ArgoCd,
    #[value(name = "flux")]
    Flux,
}

#[derive(clap::Args, Clone, Debug)]
pub struct DiscoveryArgs {
    /// Check the connections these consumers already have (argocd, flux; comma-separated or
    /// repeated). Off by default.
    #[arg(long = "discover", value_enum, value_delimiter = ',')]
    pub discover: Vec<Consumer>,
    /// Argo CD's namespaces (repeatable): its repository Secrets and Applications there.
    #[arg(long = "discover-argocd-namespace", default_value = "argocd")]
    pub argocd_namespaces: Vec<String>,
    /// Flux's namespaces (repeatable); default: every namespace.
    #[arg(long = "discover-flux-namespace")]
    pub flux_namespaces: Vec<String>,
    /// A Bitbucket Data Center host, HOST or HOST:PORT (its HTTPS REST port); repeatable.
    /// Cloud's hosts are known; no other host is ever taken for Bitbucket.
    #[arg(long = "discover-datacenter-host")]
    pub datacenter_hosts: Vec<DataCenterHost>,
}

impl DiscoveryArgs {
    pub fn enabled(&self) -> bool {
        !self.discover.is_empty()
    }
}

/// Whether the cache of an operator without a shard, over the `watched` namespaces (all when
/// empty), holds every connection discovery may write in `namespaces` (all when empty):
/// discovery then reads it instead of listing. (Generated connections carry no shard label, so
/// a shard's cache never holds them.)
pub fn cache_holds(watched: &[String], namespaces: &[String]) -> bool {
    watched.is_empty() || (!namespaces.is_empty() && namespaces.iter().all(|n| watched.contains(n)))
}

/// Runs every enabled source until dropped. `cache`: the operator's cache of connections and
/// the namespaces it watches (all when empty), where the operator has no shard.
pub async fn run(
    client: Client,
    args: DiscoveryArgs,
    cache: Option<(Store<Watched>, Vec<String>)>,
) {
    let hosts = Arc::new(args.datacenter_hosts.clone());
    let cache_for = |namespaces: &[String]| {
        cache
            .as_ref()
            .filter(|(_, watched)| cache_holds(watched, namespaces))
            .map(|(store, _)| store.clone())
    };
    let argocd = args.discover.contains(&Consumer::ArgoCd).then(|| {
        run_argocd(
            client.clone(),
            args.argocd_namespaces.clone(),
            hosts.clone(),
            cache_for(&args.argocd_namespaces),
        )
        .boxed()
    });
    let flux = args.discover.contains(&Consumer::Flux).then(|| {
        run_flux(
            client.clone(),
            args.flux_namespaces.clone(),
            hosts.clone(),
            cache_for(&args.flux_namespaces),
        )
        .boxed()
    });
    futures::future::join_all(argocd.into_iter().chain(flux)).await;
}

/// Tasks that drive watches; aborted when discovery stops (a leader's term ends).
#[derive(Default)]
struct Drivers(Vec<tokio::task::JoinHandle<()>>);

impl Drivers {
    fn spawn<S, T>(&mut self, stream: S, notify: Arc<Notify>)
    where
        S: Stream<Item = Result<T, watcher::Error>> + Send + 'static,
        T: Send + 'static,
    {
        self.0.push(tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while stream.next().await.is_some() {
                notify.notify_one();
            }
        }));
    }
}

impl Drop for Drivers {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

/// A reflector over `make()`'s watch that recovers by itself.
fn reflected<K, F, S>(
    what: &'static str,
    writer: Writer<K>,
    make: F,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static
where
    K: Resource + Clone + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Send + Sync,
    F: Fn() -> S + Send + 'static,
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
{
    reflector::reflector(writer, watch::resilient(what, make, || {}))
}

fn dynamic_store(ar: &ApiResource) -> (Store<DynamicObject>, Writer<DynamicObject>) {
    let writer = Writer::new(ar.clone());
    (writer.as_reader(), writer)
}

fn ready<K>(store: &Store<K>) -> bool
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    store
        .wait_until_ready()
        .now_or_never()
        .is_some_and(|r| r.is_ok())
}

/// Waits for the next change, the resync, or `due` (something a pass put off), then lets a
/// burst settle.
async fn next_pass(notify: &Notify, due: Option<tokio::time::Instant>) {
    let due = async {
        match due {
            Some(at) => tokio::time::sleep_until(at).await,
            None => futures::future::pending().await,
        }
    };
    tokio::select! {
        _ = notify.notified() => {}
        _ = tokio::time::sleep(RESYNC) => {}
        _ = due => {}
    }
    tokio::time::sleep(SETTLE).await;
}

/// When to ask the API server again whether a kind is served: at most every `every`; a pass
/// that may not ask yet says when it may ([`Looks::due`]), so a kind installed during a burst
/// is still found within `every` of the last look.
struct Looks {
    every: Duration,
    last: Option<tokio::time::Instant>,
    put_off: bool,
}

impl Looks {
    fn new(every: Duration) -> Looks {
        Looks {
            every,
            last: None,
            put_off: false,
        }
    }

    /// Whether this pass may ask (and then counts it as asked).
    fn now(&mut self) -> bool {
        let now = tokio::time::Instant::now();
        let may = self.last.is_none_or(|at| now >= at + self.every);
        if may {
            self.last = Some(now);
        }
        self.put_off = !may;
        may
    }

    /// When a look put off by the last pass may run.
    fn due(&self) -> Option<tokio::time::Instant> {
        self.last.filter(|_| self.put_off).map(|at| at + self.every)
    }
}

/// Only what discovery reads of an Argo CD Secret stays in memory: the values of
/// [`argocd::KEPT_KEYS`], and for every other key (`proxy` too: its URL may hold a password)
/// whether it holds something (a credential's value never does).
pub(crate) fn strip_credentials(s: &mut Secret) {
    s.metadata.managed_fields = None;
    s.string_data = None;
    if let Some(data) = s.data.as_mut() {
        data.retain(|_, v| !String::from_utf8_lossy(&v.0).trim().is_empty());
        for (k, v) in data.iter_mut() {
            if !argocd::KEPT_KEYS.contains(&k.as_str()) {
                *v = ByteString(b"1".to_vec());
            }
        }
    }
}

/// Which key of a Flux Secret holds a CA, per Secret: discovery does not watch Secrets, so what
/// it read is trusted for a while (a CA added later is seen within [`CA_KEYS_FOR`]).
struct CaKeys {
    client: Client,
    read: std::collections::HashMap<(String, String), (tokio::time::Instant, Option<String>)>,
}

const CA_KEYS_FOR: Duration = Duration::from_secs(300);

impl CaKeys {
    fn new(client: Client) -> CaKeys {
        CaKeys {
            client,
            read: Default::default(),
        }
    }

    /// Reads only the Secret a GitRepository references (Flux's keys: `ca.crt`, else `caFile`).
    /// A Secret that cannot be read has no CA here: the checks report why it cannot be read.
    async fn key(&mut self, ns: &str, name: &str) -> Option<String> {
        let id = (ns.to_string(), name.to_string());
        if let Some((at, key)) = self.read.get(&id)
            && at.elapsed() < CA_KEYS_FOR
        {
            return key.clone();
        }
        let api: Api<Secret> = Api::namespaced(self.client.clone(), ns);
        let key = match api.get_opt(name).await {
            Ok(Some(s)) => ["ca.crt", "caFile"]
                .into_iter()
                .find(|k| s.data.as_ref().is_some_and(|d| d.contains_key(*k)))
                .map(String::from),
            // Not remembered: a Secret created next is read on the next pass.
            Ok(None) | Err(_) => return None,
        };
        self.read.retain(|_, (at, _)| at.elapsed() < CA_KEYS_FOR);
        self.read
            .insert(id, (tokio::time::Instant::now(), key.clone()));
        key
    }
}

/// Where Flux's image automation is installed, the resource of its ImageUpdateAutomations.
async fn automation_kind(client: &Client) -> Option<ApiResource> {
    kube::discovery::group(client, "image.toolkit.fluxcd.io")
        .await
        .ok()?
        .recommended_kind("ImageUpdateAutomation")
        .map(|(ar, _)| ar)
}

/// Only what discovery reads of a consumer's object stays in memory: name, uid, the opt-out
/// annotation and the `spec` fields listed. Thousands of GitRepositories or Applications are
/// cached, and managedFields, status, labels and kubectl's copy of the last applied object
/// are most of each.
fn keep_spec(o: &mut DynamicObject, fields: &[&str]) {
    o.metadata.managed_fields = None;
    o.metadata.labels = None;
    if let Some(a) = o.metadata.annotations.as_mut() {
        a.retain(|k, _| k == OPT_OUT);
    }
    if let Some(data) = o.data.as_object_mut() {
        data.retain(|k, _| k == "spec");
        if let Some(spec) = data.get_mut("spec").and_then(|s| s.as_object_mut()) {
            spec.retain(|k, _| fields.contains(&k.as_str()));
        }
    }
}

/// Only a ConfigMap's keys stay in memory.
fn keys_only(c: &mut ConfigMap) {
    c.metadata.managed_fields = None;
    c.binary_data = None;
    if let Some(d) = c.data.as_mut() {
        d.values_mut().for_each(String::clear);
    }
}

async fn run_argocd(
    client: Client,
    namespaces: Vec<String>,
    hosts: Arc<Vec<DataCenterHost>>,
    cache: Option<Store<Watched>>,
) {
    let notify = Arc::new(Notify::new());
    let mut drivers = Drivers::default();
    let app_ar = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "argoproj.io",
        "v1alpha1",
        "Application",
    ));
    let mut stores = Vec::new();
    for ns in &namespaces {
        let writer = Writer::<Secret>::default();
        let secrets = writer.as_reader();
        let api: Api<Secret> = Api::namespaced(client.clone(), ns);
        let config = watcher::Config::default().labels(argocd::SECRET_SELECTOR);
        drivers.spawn(
            reflected("Argo CD repository Secrets", writer, move || {
                watcher(api.clone(), config.clone()).map_ok(|e| e.modify(strip_credentials))
            }),
            notify.clone(),
        );
        let (apps, writer) = dynamic_store(&app_ar);
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &app_ar);
        drivers.spawn(
            reflected("Argo CD Applications", writer, move || {
                watcher(api.clone(), watcher::Config::default())
                    .map_ok(|e| e.modify(|o| keep_spec(o, &["source", "sources"])))
            }),
            notify.clone(),
        );
        // The CAs Argo CD trusts per host: only which hosts it has one for is kept.
        let writer = Writer::<ConfigMap>::default();
        let certs = writer.as_reader();
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
        let config =
            watcher::Config::default().fields(&format!("metadata.name={}", argocd::TLS_CERTS));
        drivers.spawn(
            reflected("Argo CD TLS certificates", writer, move || {
                watcher(api.clone(), config.clone()).map_ok(|e| e.modify(keys_only))
            }),
            notify.clone(),
        );
        stores.push((ns.clone(), secrets, apps, certs));
    }
    for (_, secrets, apps, certs) in &stores {
        let _ = secrets.wait_until_ready().await;
        let _ = tokio::time::timeout(OPTIONAL_WAIT, apps.wait_until_ready()).await;
        let _ = tokio::time::timeout(OPTIONAL_WAIT, certs.wait_until_ready()).await;
    }
    if let Some(c) = &cache {
        let _ = c.wait_until_ready().await;
    }
    tracing::info!(namespaces = ?namespaces, "discovering Argo CD's Bitbucket connections");
    let mut applier = apply::Applier::new(client, Source::ArgoCd, Some(namespaces.clone()), cache);
    loop {
        let mut want = Vec::new();
        let mut unknown: Vec<&str> = Vec::new();
        for (ns, secrets, apps, certs) in &stores {
            let tls_hosts: BTreeSet<String> = certs
                .state()
                .iter()
                .flat_map(|c| c.data.iter().flatten().map(|(k, _)| k.to_ascii_lowercase()))
                .collect();
            let repo_secrets: Vec<argocd::RepoSecret> = secrets
                .state()
                .iter()
                .filter_map(|s| argocd::RepoSecret::from_secret(s))
                .collect();
            let app_list: Vec<argocd::App> = if ready(apps) {
                apps.state()
                    .iter()
                    .map(|a| argocd::App::from_object(a))
                    .collect()
            } else {
                // The Application CRD is not served (yet): keep what Applications generated.
                unknown.push("Application");
                Vec::new()
            };
            want.extend(argocd::desired(
                ns,
                &repo_secrets,
                &app_list,
                &hosts,
                &tls_hosts,
            ));
        }
        match applier.sync(want, &unknown).await {
            Ok(s) if s.applied + s.deleted + s.failed > 0 => {
                tracing::debug!(summary = ?s, "Argo CD discovery pass")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "Argo CD discovery pass failed"),
        }
        next_pass(&notify, None).await;
    }
}

async fn run_flux(
    client: Client,
    namespaces: Vec<String>,
    hosts: Arc<Vec<DataCenterHost>>,
    cache: Option<Store<Watched>>,
) {
    let notify = Arc::new(Notify::new());
    let mut drivers = Drivers::default();
    let scope: Vec<Option<String>> = if namespaces.is_empty() {
        vec![None]
    } else {
        namespaces.iter().cloned().map(Some).collect()
    };
    let api_for = |ar: &ApiResource, ns: &Option<String>| -> Api<DynamicObject> {
        match ns {
            Some(ns) => Api::namespaced_with(client.clone(), ns, ar),
            None => Api::all_with(client.clone(), ar),
        }
    };
    let repo_ar = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "source.toolkit.fluxcd.io",
        "v1",
        "GitRepository",
    ));
    let mut repo_stores = Vec::new();
    for ns in &scope {
        let (store, writer) = dynamic_store(&repo_ar);
        let api = api_for(&repo_ar, ns);
        drivers.spawn(
            reflected("Flux GitRepositories", writer, move || {
                watcher(api.clone(), watcher::Config::default())
                    .map_ok(|e| e.modify(|o| keep_spec(o, flux::SPEC_FIELDS)))
            }),
            notify.clone(),
        );
        repo_stores.push(store);
    }
    // ImageUpdateAutomations push through a GitRepository: read where their CRD is installed
    // (looked for again until it is, at most every AUTOMATION_LOOK: image automation is often
    // installed later).
    let watch_automations = |drivers: &mut Drivers, ar: &ApiResource| {
        scope
            .iter()
            .map(|ns| {
                let (store, writer) = dynamic_store(ar);
                let api = api_for(ar, ns);
                drivers.spawn(
                    reflected("Flux ImageUpdateAutomations", writer, move || {
                        watcher(api.clone(), watcher::Config::default())
                            .map_ok(|e| e.modify(|o| keep_spec(o, &["sourceRef"])))
                    }),
                    notify.clone(),
                );
                store
            })
            .collect::<Vec<_>>()
    };
    let mut looks = Looks::new(AUTOMATION_LOOK);
    looks.now();
    let mut automation_stores = match automation_kind(&client).await {
        Some(ar) => watch_automations(&mut drivers, &ar),
        None => Vec::new(),
    };
    for s in &repo_stores {
        let _ = s.wait_until_ready().await;
    }
    for s in &automation_stores {
        let _ = tokio::time::timeout(OPTIONAL_WAIT, s.wait_until_ready()).await;
    }
    tracing::info!(namespaces = ?namespaces, image_automation = !automation_stores.is_empty(), "discovering Flux's Bitbucket connections");
    if let Some(c) = &cache {
        let _ = c.wait_until_ready().await;
    }
    let mut cas = CaKeys::new(client.clone());
    let mut applier = apply::Applier::new(
        client.clone(),
        Source::Flux,
        (!namespaces.is_empty()).then(|| namespaces.clone()),
        cache,
    );
    loop {
        if automation_stores.is_empty()
            && looks.now()
            && let Some(ar) = automation_kind(&client).await
        {
            tracing::info!("ImageUpdateAutomations are served now: reading them");
            automation_stores = watch_automations(&mut drivers, &ar);
            for s in &automation_stores {
                let _ = tokio::time::timeout(OPTIONAL_WAIT, s.wait_until_ready()).await;
            }
        }
        let mut repos: Vec<flux::GitRepo> = repo_stores
            .iter()
            .flat_map(|s| s.state())
            .filter_map(|o| flux::GitRepo::from_object(&o))
            .collect();
        for r in repos.iter_mut().filter(|r| r.reads_ca(&hosts)) {
            if let Some(secret) = r.secret.clone() {
                r.ca_key = cas.key(&r.namespace, &secret).await;
            }
        }
        let pushed: BTreeSet<(String, String)> = automation_stores
            .iter()
            .flat_map(|s| s.state())
            .filter_map(|o| flux::pushed_through(&o))
            .collect();
        match applier
            .sync(flux::desired(&repos, &pushed, &hosts), &[])
            .await
        {
            Ok(s) if s.applied + s.deleted + s.failed > 0 => {
                tracing::debug!(summary = ?s, "Flux discovery pass")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "Flux discovery pass failed"),
        }
        let due = if automation_stores.is_empty() {
            looks.due()
        } else {
            None
        };
        next_pass(&notify, due).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_is_read_only_where_it_holds_every_generated_connection() {
        let ns = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(cache_holds(&[], &[]));
        assert!(cache_holds(&[], &ns(&["argocd"])));
        assert!(cache_holds(&ns(&["argocd", "a"]), &ns(&["argocd"])));
        assert!(!cache_holds(&ns(&["a"]), &ns(&["argocd"])));
        // Flux in every namespace, the operator in some.
        assert!(!cache_holds(&ns(&["a"]), &[]));
    }

    #[test]
    fn a_consumer_object_is_kept_without_what_discovery_does_not_read() {
        let mut o: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": "r", "namespace": "n", "uid": "u", "labels": {"a": "b"},
                         "annotations": {OPT_OUT: "false", "kubectl.kubernetes.io/last-applied-configuration": "{}"},
                         "managedFields": [{"manager": "kubectl"}]},
            "spec": {"url": "https://bitbucket.org/a/b", "secretRef": {"name": "s"}, "interval": "1m"},
            "status": {"conditions": []}
        }))
        .unwrap();
        keep_spec(&mut o, &["url", "secretRef", "provider"]);
        assert_eq!(
            serde_json::to_value(&o).unwrap(),
            serde_json::json!({
                "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                "metadata": {"name": "r", "namespace": "n", "uid": "u", "annotations": {OPT_OUT: "false"}},
                "spec": {"url": "https://bitbucket.org/a/b", "secretRef": {"name": "s"}}
            })
        );
        let repo = flux::GitRepo::from_object(&o).unwrap();
        assert!(repo.opted_out);
        assert_eq!(repo.secret.as_deref(), Some("s"));
    }

    #[tokio::test]
    async fn looks_for_a_kind_at_most_so_often_and_catches_up() {
        let mut looks = Looks::new(Duration::from_millis(200));
        assert!(looks.now(), "the first pass looks");
        assert_eq!(looks.due(), None);
        // A burst: the passes that follow do not look, and say when one may.
        assert!(!looks.now());
        assert!(!looks.now());
        let due = looks.due().unwrap();
        tokio::time::sleep_until(due).await;
        assert!(looks.now(), "the look put off runs when due");
        assert_eq!(looks.due(), None, "nothing put off");
    }
}
