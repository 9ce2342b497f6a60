//! A tiny HTTP/1.1 client over tokio-rustls, and the fixture the tests share.

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine as _;
use bbconn_sim::{Fixture, Pki, Running, Simulator};
use bytes::Bytes;
use http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

pub const FIXTURE: &str = r#"
listeners:
  - { name: cloud, tls: good, hosts: [api.bitbucket.org, bitbucket.org], serves: [cloud] }
  - { name: dc, tls: good, hosts: [bitbucket.internal, 127.0.0.1], serves: [datacenter] }
  - { name: dcctx, tls: none, serves: [datacenter], basePath: /bitbucket }
  - { name: both, hosts: [bitbucket.example.com] }
  - name: proxy
    kind: connectProxy
    routes: { "bitbucket.internal:443": dc }
  - name: refusing
    kind: connectProxy
    refuse: true
    routes: { "bitbucket.internal:443": dc }
cloud:
  users:
    - { username: alice, email: alice@example.com, displayName: Alice Liddell, accountId: "557058:aaaa", uuid: "{11111111-2222-4333-8444-555555555555}", password: alice-account-password }
    - { username: bob, email: bob@example.com }
  workspaces:
    - slug: acme
      name: ACME
      repositories:
        - { slug: app, access: { alice: admin, bob: write } }
        - { slug: lib, project: LIB, access: { alice: read } }
        - { slug: site, isPrivate: false }
  tokens:
    - { value: ATATT-alice-good, kind: apiToken, user: alice, scopes: [read:user:bitbucket, read:repository:bitbucket, read:workspace:bitbucket] }
    - { value: ATATT-alice-write-only, kind: apiToken, user: alice, scopes: [write:repository:bitbucket] }
    - { value: ATATT-alice-revoked, kind: apiToken, user: alice, scopes: [read:user:bitbucket], revoked: true }
    - { value: ATATT-alice-expired, kind: apiToken, user: alice, scopes: [read:user:bitbucket], expired: true }
    - { value: ATATT-alice-no-scopes, kind: apiToken, user: alice }
    - { value: ATATT-bob, kind: apiToken, user: bob, scopes: [read:user:bitbucket, read:repository:bitbucket] }
    - { value: ATCTT-repo, kind: repositoryAccessToken, workspace: acme, repository: app, scopes: [repository, pullrequest] }
    - { value: ATCTT-repo-admin-only, kind: repositoryAccessToken, workspace: acme, repository: app, scopes: ["repository:admin"] }
    - { value: ATCTT-project, kind: projectAccessToken, workspace: acme, project: LIB, scopes: ["repository:write"] }
    - { value: ATCTT-workspace, kind: workspaceAccessToken, workspace: acme, scopes: ["repository:admin", "repository:write", webhook] }
    - { value: ATCTT-revoked, kind: repositoryAccessToken, workspace: acme, repository: app, scopes: [repository], revoked: true }
  oauthConsumers:
    - { key: private-key, secret: private-secret, private: true, user: alice, callbackUrl: "https://tfe.example.com/cb", scopes: ["account:write", "repository:admin", "pullrequest:write", webhook] }
    - { key: public-key, secret: public-secret, private: false, user: alice, callbackUrl: "https://tfe.example.com/cb", scopes: [account] }
datacenter:
  version: 9.2.0
  users:
    - { name: alice, password: alice-pw, id: 1, displayName: Alice, email: alice@example.com }
    - { name: Bob, password: bob-pw, id: 2 }
  projects:
    - key: PROJ
      name: Project
      repositories:
        - { slug: app, access: { alice: REPO_ADMIN, bob: REPO_WRITE } }
        - { slug: docs, access: { alice: REPO_READ } }
    - key: OPS
      name: Operations
      access: { alice: PROJECT_ADMIN }
      repositories: [ { slug: infra } ]
  tokens:
    - { id: "100000000001", value: BBDC-alice-admin, kind: personal, user: alice, permissions: [PROJECT_READ, REPO_ADMIN], expiryDays: 90 }
    - { id: "100000000002", value: BBDC-alice-read, kind: personal, user: alice, permissions: [PROJECT_READ, REPO_READ] }
    - { id: "100000000003", value: BBDC-alice-revoked, kind: personal, user: alice, permissions: [REPO_ADMIN], revoked: true }
    - { id: "100000000004", value: BBDC-alice-old, kind: personal, user: alice, permissions: [REPO_ADMIN], createdDate: "2020-01-01T00:00:00Z", expiryDays: 30 }
    - { id: "100000000005", value: BBDC-proj, kind: project, project: PROJ, permissions: [PROJECT_READ, REPO_WRITE] }
    - { id: "100000000006", value: BBDC-repo, kind: repository, project: PROJ, repository: docs, permissions: [REPO_ADMIN] }
    - { id: "100000000007", value: BBDC-bob, kind: personal, user: Bob, permissions: [PROJECT_ADMIN] }
  oauthClients:
    - { clientId: dc-client, clientSecret: dc-secret, redirectUrl: "https://codescan.example.com/_codescan/oauth2/authorize", scopes: [REPO_ADMIN] }
"#;

pub struct Sim {
    pub pki: Pki,
    pub running: Running,
}

pub async fn start(yaml: &str) -> Sim {
    let pki = Pki::new();
    let fixture = Fixture::from_yaml(yaml).unwrap();
    let running = Simulator::start(fixture, &pki).await.unwrap();
    Sim { pki, running }
}

pub async fn start_default() -> Sim {
    start(FIXTURE).await
}

impl Sim {
    pub fn addr(&self, listener: &str) -> SocketAddr {
        self.running.addr(listener).unwrap()
    }

    /// A fresh connection to a listener, trusting the simulator's CA, with this SNI/Host.
    pub async fn conn(&self, listener: &str, host: &str) -> Conn {
        Conn::connect(self.addr(listener), host, Some(&self.pki.ca_pem()))
            .await
            .unwrap()
    }

    pub async fn plain(&self, listener: &str) -> Conn {
        Conn::connect(self.addr(listener), "localhost", None)
            .await
            .unwrap()
    }

    /// One GET on a fresh connection.
    pub async fn get(&self, listener: &str, host: &str, path: &str, auth: Option<&str>) -> Resp {
        self.conn(listener, host).await.get(path, auth).await
    }
}

pub fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

pub fn client_config(ca_pem: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// TLS over an existing stream (e.g. a CONNECT tunnel).
pub async fn tls_over(
    stream: Box<dyn Io>,
    host: &str,
    ca_pem: &str,
) -> std::io::Result<Box<dyn Io>> {
    let connector = TlsConnector::from(client_config(ca_pem));
    let name = ServerName::try_from(host.to_owned()).unwrap();
    let tls = connector.connect(name, stream).await?;
    Ok(Box::new(tls))
}

pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    host: String,
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

impl Conn {
    pub async fn connect(
        addr: SocketAddr,
        host: &str,
        ca_pem: Option<&str>,
    ) -> std::io::Result<Conn> {
        let tcp = TcpStream::connect(addr).await?;
        let io: Box<dyn Io> = match ca_pem {
            Some(ca) => tls_over(Box::new(tcp), host, ca).await?,
            None => Box::new(tcp),
        };
        Ok(Conn::over(io, host).await)
    }

    pub async fn over(io: Box<dyn Io>, host: &str) -> Conn {
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .unwrap();
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Conn {
            sender,
            host: host.to_owned(),
        }
    }

    pub async fn try_send(
        &mut self,
        method: Method,
        path: &str,
        auth: Option<&str>,
        form: Option<&[(&str, &str)]>,
    ) -> Result<Resp, hyper::Error> {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host);
        if let Some(a) = auth {
            builder = builder.header("authorization", a);
        }
        let body = match form {
            Some(pairs) => {
                builder = builder.header("content-type", "application/x-www-form-urlencoded");
                let mut s = form_urlencoded::Serializer::new(String::new());
                for (k, v) in pairs {
                    s.append_pair(k, v);
                }
                Bytes::from(s.finish())
            }
            None => Bytes::new(),
        };
        let resp = self
            .sender
            .send_request(builder.body(Full::new(body)).unwrap())
            .await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok(Resp {
            status,
            headers,
            body,
        })
    }

    /// One POST with a raw body of the given media type.
    pub async fn post(
        &mut self,
        path: &str,
        auth: Option<&str>,
        content_type: &str,
        body: &str,
    ) -> Resp {
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header("host", &self.host)
            .header("content-type", content_type);
        if let Some(a) = auth {
            builder = builder.header("authorization", a);
        }
        let req = builder
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap();
        let resp = self.sender.send_request(req).await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&mut self, path: &str, auth: Option<&str>) -> Resp {
        self.try_send(Method::GET, path, auth, None).await.unwrap()
    }

    pub async fn post_form(
        &mut self,
        path: &str,
        auth: Option<&str>,
        form: &[(&str, &str)],
    ) -> Resp {
        self.try_send(Method::POST, path, auth, Some(form))
            .await
            .unwrap()
    }
}
