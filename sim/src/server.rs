//! Listeners: TCP accept loops, TLS, HTTP/1.1 with keep-alive, faults, and the request log.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tracing::debug;

use crate::error::SimError;
use crate::fixture::{Fault, FaultKind, Fixture, Flavor, ListenerKind};
use crate::http::{Req, Resp};
use crate::pki::{CertMode, Pki};
use crate::state::RecordedRequest;
use crate::state::{ListenerRt, RATE_LIMITED_BODY, Shared};
use crate::{cloud, dc, http as h, model, proxy};

fn tls_acceptor(
    pki: &Pki,
    mode: CertMode,
    hosts: &[String],
    listener: &str,
) -> Result<TlsAcceptor, SimError> {
    let (chain, key) = pki.try_leaf(mode, hosts)?;
    let tls_err = |source| SimError::Tls {
        listener: listener.to_owned(),
        source,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(tls_err)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn normalise_base_path(p: &str) -> String {
    p.trim_end_matches('/').to_owned()
}

/// The listeners' shared state, the shutdown switch and the accept loops: what a
/// [`crate::Running`] holds.
pub(crate) struct Started {
    pub shared: Arc<Shared>,
    pub ssh: Arc<crate::ssh::SshRt>,
    pub shutdown: tokio::sync::watch::Sender<bool>,
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
}

pub(crate) async fn start(fixture: Fixture, pki: &Pki) -> Result<Started, SimError> {
    model::validate(&fixture)?;
    let ssh = Arc::new(crate::ssh::SshRt::new(&fixture)?);
    let mut bound = Vec::new();
    let mut listeners = Vec::new();
    for l in &fixture.listeners {
        let tcp = TcpListener::bind(l.bind)
            .await
            .map_err(|source| SimError::Bind {
                listener: l.name.clone(),
                bind: l.bind,
                source,
            })?;
        let addr = tcp.local_addr().map_err(|source| SimError::Io {
            what: format!("listener {}: local address", l.name),
            source,
        })?;
        let acceptor = match (l.kind, l.tls_mode().cert_mode()) {
            (ListenerKind::Http, Some(mode)) => Some(tls_acceptor(pki, mode, &l.hosts, &l.name)?),
            _ => None,
        };
        listeners.push(ListenerRt {
            name: l.name.clone(),
            addr,
            kind: l.kind,
            tls: acceptor.is_some(),
            cloud: l.serves.contains(&Flavor::Cloud),
            dc: l.serves.contains(&Flavor::Datacenter),
            base_path: normalise_base_path(&l.base_path),
            advertised_base_url: l.advertised_base_url.clone(),
        });
        bound.push((tcp, acceptor));
    }
    let shared = Arc::new(Shared::new(fixture, listeners));
    let (tx, rx) = watch::channel(false);
    let tasks = bound
        .into_iter()
        .enumerate()
        .map(|(i, (tcp, acceptor))| {
            if shared.listeners[i].kind == ListenerKind::Ssh {
                let ssh = ssh.clone();
                tokio::spawn(crate::ssh::accept_loop(
                    shared.clone(),
                    ssh,
                    i,
                    tcp,
                    rx.clone(),
                ))
            } else {
                tokio::spawn(accept_loop(shared.clone(), i, tcp, acceptor, rx.clone()))
            }
        })
        .collect();
    for l in &shared.listeners {
        debug!(listener = %l.name, addr = %l.addr, tls = l.tls, "listening");
    }
    Ok(Started {
        shared,
        ssh,
        shutdown: tx,
        tasks,
    })
}

async fn accept_loop(
    shared: Arc<Shared>,
    idx: usize,
    tcp: TcpListener,
    acceptor: Option<TlsAcceptor>,
    mut stop: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    let proxy = shared.listeners[idx].kind == ListenerKind::ConnectProxy;
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            accepted = tcp.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let shared = shared.clone();
                    if proxy {
                        conns.spawn(proxy::serve(shared, idx, stream));
                    } else {
                        conns.spawn(serve_http(shared, idx, stream, acceptor.clone()));
                    }
                }
                Err(e) => {
                    debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

async fn serve_http(
    shared: Arc<Shared>,
    idx: usize,
    stream: TcpStream,
    acceptor: Option<TlsAcceptor>,
) {
    match acceptor {
        Some(acceptor) => {
            match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await {
                Ok(Ok(tls)) => serve_io(shared, idx, TokioIo::new(tls), true).await,
                Ok(Err(e)) => debug!(error = %e, "TLS handshake failed"),
                Err(_) => debug!("TLS handshake timed out"),
            }
        }
        None => serve_io(shared, idx, TokioIo::new(stream), false).await,
    }
}

async fn serve_io<I>(shared: Arc<Shared>, idx: usize, io: I, tls: bool)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| {
        let shared = shared.clone();
        async move { handle(&shared, idx, tls, req).await }
    });
    if let Err(e) = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, svc)
        .await
    {
        debug!(error = %e, "connection ended with an error");
    }
}

async fn handle(
    shared: &Shared,
    idx: usize,
    tls: bool,
    req: Request<Incoming>,
) -> Result<Resp, std::io::Error> {
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().map(str::to_owned);
    let auth = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let method = parts.method.clone();
    let record = |status: u16| RecordedRequest {
        listener: shared.listeners[idx].name.clone(),
        method: method.to_string(),
        path: path.clone(),
        query: query.clone(),
        authorization: auth.clone(),
        status,
    };

    let mut early = None;
    if let Some(fault) = shared.take_fault(idx, &method, &path, query.as_deref(), auth.as_deref()) {
        match fault.kind {
            FaultKind::Slow => {
                tokio::time::sleep(Duration::from_millis(fault.delay_ms.unwrap_or(0))).await;
            }
            FaultKind::Reset => {
                shared.record(record(0));
                return Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "reset fault",
                ));
            }
            _ => early = Some(fault_response(fault)),
        }
    }

    let resp = match early {
        Some(r) => r,
        None => match Limited::new(body, 1 << 20).collect().await {
            Ok(collected) => {
                let req = Req {
                    listener: idx,
                    method: method.clone(),
                    path: path.clone(),
                    query: query.clone(),
                    headers: std::mem::take(&mut parts.headers),
                    body: collected.to_bytes(),
                    tls,
                };
                route(shared, req)
            }
            Err(_) => h::text(413, "Request body too large"),
        },
    };
    debug!(listener = %shared.listeners[idx].name, %method, %path, status = resp.status().as_u16(), "served");
    shared.record(record(resp.status().as_u16()));
    Ok(resp)
}

fn route(shared: &Shared, mut req: Req) -> Resp {
    if let Some(r) = crate::git::handle(shared, &req) {
        return r;
    }
    let l = &shared.listeners[req.listener];
    if l.dc
        && let Some(rest) = strip_base(&l.base_path, &req.path)
    {
        req.path = rest;
        return dc::handle(shared, &req);
    }
    if l.dc && !l.cloud && is_web_page(&l.base_path, &req.path) {
        return dc::web(shared, &req);
    }
    if l.cloud {
        return cloud::handle(shared, &req);
    }
    dc::not_found()
}

/// The path below the Data Center base path, if it is a REST path (`{base}/rest...`).
fn strip_base(base: &str, path: &str) -> Option<String> {
    let rest = path.strip_prefix(base)?;
    let after = rest.strip_prefix("/rest")?;
    (after.is_empty() || after.starts_with('/')).then(|| rest.to_owned())
}

/// A Data Center path below the base path that is neither REST (`/rest`) nor git (`/scm`).
fn is_web_page(base: &str, path: &str) -> bool {
    let Some(rest) = path.strip_prefix(base) else {
        return false;
    };
    if !(rest.is_empty() || rest.starts_with('/')) {
        return false;
    }
    let first = rest.trim_start_matches('/').split('/').next().unwrap_or("");
    first != "rest" && first != "scm"
}

fn fault_response(f: &Fault) -> Resp {
    match f.kind {
        FaultKind::RateLimited => {
            let mut r = h::text(429, RATE_LIMITED_BODY);
            if let Some(s) = f.retry_after {
                h::set_header(&mut r, "retry-after", &s.to_string());
            }
            r
        }
        FaultKind::ServerError => {
            let code = f.status.unwrap_or(503);
            let reason = h::status(code).canonical_reason().unwrap_or("Server Error");
            h::text(code, reason)
        }
        FaultKind::Oversized => {
            let n = f.bytes.unwrap_or(5_000_000);
            h::bytes(200, "application/json; charset=utf-8", oversized_body(n))
        }
        FaultKind::Redirect => {
            let mut r = h::empty(f.status.unwrap_or(302));
            h::set_header(&mut r, "location", f.location.as_deref().unwrap_or("/"));
            r
        }
        FaultKind::Answer => {
            let body = Bytes::from(f.body.clone().unwrap_or_default());
            let mut r = h::bytes(f.status.unwrap_or(200), "", body);
            r.headers_mut().remove(http::header::CONTENT_TYPE);
            for (k, v) in &f.headers {
                // Hop-by-hop framing is the server's own; the recording's would lie about it.
                if k.eq_ignore_ascii_case("content-length")
                    || k.eq_ignore_ascii_case("transfer-encoding")
                    || k.eq_ignore_ascii_case("connection")
                {
                    continue;
                }
                if let (Ok(name), Ok(value)) = (
                    http::HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes()),
                    http::HeaderValue::from_str(v),
                ) {
                    r.headers_mut().append(name, value);
                }
            }
            r
        }
        // Handled before a response is built.
        FaultKind::Slow | FaultKind::Reset => h::empty(500),
    }
}

/// A JSON object of exactly `n` bytes (or the smallest such object, if `n` is tiny).
fn oversized_body(n: usize) -> Bytes {
    const HEAD: &[u8] = br#"{"padding":""#;
    const TAIL: &[u8] = br#""}"#;
    let fill = n.saturating_sub(HEAD.len() + TAIL.len());
    let mut v = Vec::with_capacity(HEAD.len() + fill + TAIL.len());
    v.extend_from_slice(HEAD);
    v.resize(HEAD.len() + fill, b'x');
    v.extend_from_slice(TAIL);
    Bytes::from(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_base_path() {
        assert_eq!(
            strip_base("", "/rest/api/latest/x"),
            Some("/rest/api/latest/x".into())
        );
        assert_eq!(
            strip_base("/bitbucket", "/bitbucket/rest/api"),
            Some("/rest/api".into())
        );
        assert_eq!(strip_base("/bitbucket", "/rest/api"), None);
        assert_eq!(strip_base("", "/restful"), None);
        assert_eq!(strip_base("", "/2.0/user"), None);
    }

    #[test]
    fn web_pages() {
        assert!(is_web_page("", "/projects"));
        assert!(is_web_page("/bitbucket", "/bitbucket/dashboard"));
        assert!(!is_web_page("/bitbucket", "/other"));
        assert!(!is_web_page("", "/scm/proj/app.git/info/refs"));
        assert!(!is_web_page("", "/rest/api"));
    }

    #[test]
    fn oversized_is_exact() {
        assert_eq!(oversized_body(5000).len(), 5000);
        assert!(serde_json::from_slice::<serde_json::Value>(&oversized_body(100)).is_ok());
    }
}
