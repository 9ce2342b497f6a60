//! `Applier::sync` against a stand-in API server that records what it is asked: which requests
//! a pass sends, with and without the operator's cache of connections.

use super::*;
use crate::api::{BitbucketConnectionSpec, Flavor};
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::watcher;
use std::sync::{Arc, Mutex};

/// The connections that exist, by (namespace, name), and the requests seen ("VERB path").
#[derive(Default)]
struct Fake {
    objects: BTreeMap<(String, String), serde_json::Value>,
    requests: Vec<String>,
}

fn status(code: u16, reason: &str) -> serde_json::Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": reason, "reason": reason, "code": code})
}

fn answer(fake: &Mutex<Fake>, method: &http::Method, path: &str, body: &[u8]) -> (u16, String) {
    let Ok(mut f) = fake.lock() else {
        return (500, String::new());
    };
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let verb = if parts.last() == Some(&"bitbucketconnections") {
        "LIST".to_string()
    } else {
        method.to_string()
    };
    f.requests.push(format!("{verb} {path}"));
    let meta = |o: &serde_json::Value| json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": o["metadata"]});
    let (code, v) = match (verb.as_str(), parts.as_slice()) {
        ("LIST", _) => {
            let items: Vec<serde_json::Value> = f.objects.values().map(meta).collect();
            let list = json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList",
                              "metadata": {}, "items": items});
            (200, list)
        }
        (_, [.., "namespaces", ns, "bitbucketconnections", name]) => {
            let key = (ns.to_string(), name.to_string());
            match verb.as_str() {
                "GET" => match f.objects.get(&key) {
                    Some(o) => (200, meta(o)),
                    None => (404, status(404, "NotFound")),
                },
                "PATCH" => {
                    let mut o: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
                    o["metadata"]["uid"] = json!(format!("uid-{name}"));
                    f.objects.insert(key, o.clone());
                    (200, o)
                }
                "DELETE" => match f.objects.remove(&key) {
                    Some(_) => (
                        200,
                        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}),
                    ),
                    None => (404, status(404, "NotFound")),
                },
                _ => (405, status(405, "MethodNotAllowed")),
            }
        }
        _ => (404, status(404, "NotFound")),
    };
    (code, v.to_string())
}

/// A client of the stand-in, on a port of its own.
async fn serve(fake: Arc<Mutex<Fake>>) -> Client {
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let fake = fake.clone();
        async move {
            let method = req.method().clone();
            let path = req.uri().path().to_string();
            let body = axum::body::to_bytes(req.into_body(), 1 << 20)
                .await
                .unwrap_or_default();
            let (code, text) = answer(&fake, &method, &path, &body);
            (
                http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::OK),
                [(http::header::CONTENT_TYPE, "application/json")],
                text,
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let config = kube::Config::new(format!("http://{addr}").parse().unwrap());
    Client::try_from(config).unwrap()
}

pub(super) fn desired(name: &str) -> Desired {
    Desired {
        source: Source::Flux,
        namespace: "flux-system".into(),
        name: format!("flux-{name}"),
        owners: vec![Owner {
            api_version: "source.toolkit.fluxcd.io/v1".into(),
            kind: "GitRepository".into(),
            name: name.into(),
            uid: format!("repo-{name}"),
        }],
        spec: BitbucketConnectionSpec {
            flavor: Flavor::Cloud,
            url: None,
            auth: None,
            profiles: vec![],
            requirements: None,
            tls: None,
            network: None,
            git: None,
            interval: None,
            expiry_warning: None,
        },
    }
}

/// A person's connection: no discovery labels, no owner.
fn persons(name: &str) -> serde_json::Value {
    json!({"apiVersion": "bbconn.dev/v1alpha1", "kind": "BitbucketConnection",
           "metadata": {"name": name, "namespace": "flux-system", "uid": format!("uid-{name}")},
           "spec": {"flavor": "Cloud"}})
}

fn cache_event(writer: &mut Writer<Watched>, o: &serde_json::Value, deleted: bool) {
    let w: Watched = serde_json::from_value(o.clone()).unwrap();
    let event = if deleted {
        watcher::Event::Delete(w)
    } else {
        watcher::Event::Apply(w)
    };
    writer.apply_watcher_event(&event);
}

fn take_requests(fake: &Mutex<Fake>) -> Vec<String> {
    std::mem::take(&mut fake.lock().unwrap().requests)
}

#[tokio::test]
async fn a_pass_over_the_cache_sends_only_what_changed() {
    let fake = Arc::new(Mutex::new(Fake::default()));
    let mine = persons("flux-mine");
    fake.lock()
        .unwrap()
        .objects
        .insert(("flux-system".into(), "flux-mine".into()), mine.clone());
    let client = serve(fake.clone()).await;
    let (cache, mut writer) = reflector::store::<Watched>();
    cache_event(&mut writer, &mine, false);
    let mut applier = Applier::new(client, Source::Flux, None, Some(cache));
    let base = "/apis/bbconn.dev/v1alpha1/namespaces/flux-system/bitbucketconnections";

    // A new name is read once (it may be a connection outside the cache: a shard's) and
    // applied; a name the cache shows taken is not read at all; nothing is listed.
    let want = || vec![desired("app"), desired("mine")];
    let s = applier.sync(want(), &[]).await.unwrap();
    assert_eq!((s.applied, s.refused), (1, 1), "{s:?}");
    assert_eq!(
        take_requests(&fake),
        [
            format!("GET {base}/flux-app"),
            format!("PATCH {base}/flux-app")
        ]
    );
    // Before the cache shows the new connection: known as discovery's, not applied again.
    let s = applier.sync(want(), &[]).await.unwrap();
    assert_eq!((s.applied, s.unchanged, s.refused), (0, 1, 1), "{s:?}");
    assert_eq!(take_requests(&fake), [format!("GET {base}/flux-app")]);

    // Once the cache has it, an unchanged source costs no request at all.
    let app =
        fake.lock().unwrap().objects[&("flux-system".to_string(), "flux-app".to_string())].clone();
    cache_event(&mut writer, &app, false);
    let s = applier.sync(want(), &[]).await.unwrap();
    assert_eq!((s.applied, s.unchanged, s.refused), (0, 1, 1), "{s:?}");
    assert!(take_requests(&fake).is_empty());

    // The person deletes theirs: discovery takes the name on the next pass.
    fake.lock()
        .unwrap()
        .objects
        .remove(&("flux-system".to_string(), "flux-mine".to_string()));
    cache_event(&mut writer, &mine, true);
    let s = applier.sync(want(), &[]).await.unwrap();
    assert_eq!((s.applied, s.refused), (1, 0), "{s:?}");

    // The source gone: its connection is deleted, found in the cache.
    let taken =
        fake.lock().unwrap().objects[&("flux-system".to_string(), "flux-mine".to_string())].clone();
    cache_event(&mut writer, &taken, false);
    take_requests(&fake);
    let s = applier.sync(vec![desired("mine")], &[]).await.unwrap();
    assert_eq!(s.deleted, 1, "{s:?}");
    assert_eq!(take_requests(&fake), [format!("DELETE {base}/flux-app")]);
}

#[tokio::test]
async fn without_the_cache_a_taken_name_is_read_once_per_resync() {
    let fake = Arc::new(Mutex::new(Fake::default()));
    fake.lock().unwrap().objects.insert(
        ("flux-system".into(), "flux-mine".into()),
        persons("flux-mine"),
    );
    let client = serve(fake.clone()).await;
    let mut applier = Applier::new(client, Source::Flux, None, None);
    let all = "/apis/bbconn.dev/v1alpha1/bitbucketconnections";
    let one = "/apis/bbconn.dev/v1alpha1/namespaces/flux-system/bitbucketconnections/flux-mine";
    let s = applier.sync(vec![desired("mine")], &[]).await.unwrap();
    assert_eq!(s.refused, 1, "{s:?}");
    assert_eq!(
        take_requests(&fake),
        [format!("LIST {all}"), format!("GET {one}")]
    );
    // The next passes (a burst of source changes) do not read it again.
    for _ in 0..3 {
        let s = applier.sync(vec![desired("mine")], &[]).await.unwrap();
        assert_eq!(s.refused, 1, "{s:?}");
        assert_eq!(take_requests(&fake), [format!("LIST {all}")]);
    }
}
