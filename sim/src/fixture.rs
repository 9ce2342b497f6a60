//! The YAML fixture: listeners, the Cloud and Data Center worlds, and injected faults.
//!
//! Field names are camelCase; unknown fields are errors. See `sim/fixtures/demo.yaml`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::SimError;
use crate::pki::CertMode;

fn yes() -> bool {
    true
}

/// The whole fixture.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fixture {
    #[serde(default)]
    pub listeners: Vec<Listener>,
    #[serde(default)]
    pub cloud: Cloud,
    #[serde(default)]
    pub datacenter: DataCenter,
    /// Tried in order before normal handling; the first that matches wins.
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// Keep every request for [`crate::Running::requests`] (default true). Turn off for long
    /// benchmarks so memory stays flat; `request_count` still counts.
    #[serde(default = "yes")]
    pub record_requests: bool,
}

impl Fixture {
    pub fn from_yaml(yaml: &str) -> Result<Fixture, SimError> {
        serde_saphyr::from_str(yaml).map_err(|e| SimError::Fixture(e.to_string()))
    }

    pub fn from_file(path: &Path) -> Result<Fixture, SimError> {
        let text = std::fs::read_to_string(path).map_err(|source| SimError::Io {
            what: format!("reading {}", path.display()),
            source,
        })?;
        Self::from_yaml(&text)
    }
}

/// What a listener does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ListenerKind {
    /// Serves the Bitbucket REST API(s) named in `serves`.
    #[default]
    Http,
    /// An HTTP CONNECT proxy (plain TCP; `tls` is ignored).
    ConnectProxy,
    /// git over SSH as the one flavour in `serves` offers it (Cloud: ssh.bitbucket.org:22,
    /// Data Center: port 7999); `tls` is ignored. See `sim/src/ssh/`.
    Ssh,
}

/// A listener's transport: a certificate mode, or plain HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    Good,
    Expired,
    NotYetValid,
    WrongHost,
    UnknownCa,
    ExpiringSoon,
    /// Plain HTTP.
    None,
}

impl TlsMode {
    pub fn cert_mode(self) -> Option<CertMode> {
        match self {
            TlsMode::Good => Some(CertMode::Good),
            TlsMode::Expired => Some(CertMode::Expired),
            TlsMode::NotYetValid => Some(CertMode::NotYetValid),
            TlsMode::WrongHost => Some(CertMode::WrongHost),
            TlsMode::UnknownCa => Some(CertMode::UnknownCa),
            TlsMode::ExpiringSoon => Some(CertMode::ExpiringSoon),
            TlsMode::None => None,
        }
    }
}

/// Which REST API a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    Cloud,
    Datacenter,
}

fn default_bind() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn default_hosts() -> Vec<String> {
    vec!["localhost".to_owned(), "127.0.0.1".to_owned()]
}

fn default_serves() -> Vec<Flavor> {
    vec![Flavor::Cloud, Flavor::Datacenter]
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Listener {
    pub name: String,
    /// Port 0 picks an ephemeral port; see [`crate::Running::addr`].
    #[serde(default = "default_bind")]
    pub bind: SocketAddr,
    #[serde(default)]
    pub kind: ListenerKind,
    /// Default: `good` for HTTP listeners. Ignored for proxies.
    #[serde(default)]
    pub tls: Option<TlsMode>,
    /// SANs of the leaf certificate (default `[localhost, 127.0.0.1]`).
    #[serde(default = "default_hosts")]
    pub hosts: Vec<String>,
    /// Default: both (their paths do not overlap).
    #[serde(default = "default_serves")]
    pub serves: Vec<Flavor>,
    /// Data Center context path, e.g. `/bitbucket`; the REST API is then under `/bitbucket/rest`.
    #[serde(default)]
    pub base_path: String,
    /// Proxy only: CONNECT target `host:port` -> listener name (or a literal `ip:port`).
    #[serde(default)]
    pub routes: BTreeMap<String, String>,
    /// Proxy only: answer every CONNECT with 403.
    #[serde(default)]
    pub refuse: bool,
    /// Proxy only: require Basic proxy auth with these credentials; a CONNECT without them, or
    /// with others, is answered 407 with `Proxy-Authenticate: Basic realm=...`.
    #[serde(default)]
    pub proxy_auth: Option<ProxyAuth>,
    /// Data Center: the base URL the server is configured with, used in its links (clone URLs)
    /// instead of the address the client used: a server behind a reverse proxy.
    #[serde(default)]
    pub advertised_base_url: Option<String>,
    /// Cloud SSH only: serve the 2048-bit RSA host key Bitbucket retired in 2023 instead of the
    /// current 3072-bit one, as a client that pinned the old key would meet a changed key.
    #[serde(default)]
    pub retired_rsa_host_key: bool,
}

/// Basic proxy credentials a proxy listener requires.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxyAuth {
    pub username: String,
    pub password: String,
}

impl Listener {
    pub fn tls_mode(&self) -> TlsMode {
        match (self.kind, self.tls) {
            (ListenerKind::ConnectProxy | ListenerKind::Ssh, _) => TlsMode::None,
            (ListenerKind::Http, Some(t)) => t,
            (ListenerKind::Http, None) => TlsMode::Good,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Bitbucket Cloud

fn default_rate_limit() -> u32 {
    // support.atlassian.com/bitbucket-cloud/docs/api-request-limits: 1,000 authenticated
    // requests per rolling hour.
    1000
}

fn default_oauth_ttl() -> u64 {
    // developer.atlassian.com/cloud/bitbucket/oauth-2: access tokens expire after two hours.
    7200
}

fn default_anonymous_rate_limit() -> u32 {
    // Same page: 60 unauthenticated requests per hour.
    60
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Cloud {
    #[serde(default)]
    pub users: Vec<CloudUser>,
    #[serde(default)]
    pub workspaces: Vec<Workspace>,
    #[serde(default)]
    pub tokens: Vec<CloudToken>,
    #[serde(default)]
    pub oauth_consumers: Vec<OAuthConsumer>,
    /// Authenticated requests per credential per rolling hour; 0 turns the limit off.
    #[serde(default = "default_rate_limit")]
    pub rate_limit_per_hour: u32,
    /// Unauthenticated requests (all clients together) per rolling hour; 0 turns it off.
    #[serde(default = "default_anonymous_rate_limit")]
    pub anonymous_rate_limit_per_hour: u32,
    /// Whether a 429 carries `Retry-After` (default false: the recorded 429s carry none).
    #[serde(default)]
    pub rate_limit_retry_after: bool,
    /// Whether a 403 for missing scopes carries `x-credential-type` / `x-oauth-scopes` /
    /// `x-accepted-oauth-scopes` (default false: the recorded scope 403 carries none).
    #[serde(default)]
    pub scope_headers_on_scope_error: bool,
    /// Lifetime of access tokens the token endpoint issues (default 7200; 0: expired at once).
    #[serde(default = "default_oauth_ttl")]
    pub oauth_token_ttl_seconds: u64,
    /// Whether "Access token expired." goes on with " Use your refresh token to obtain a new
    /// access token." (both texts are recorded; default false).
    #[serde(default)]
    pub expired_access_token_hint: bool,
}

impl Default for Cloud {
    fn default() -> Self {
        Cloud {
            users: Vec::new(),
            workspaces: Vec::new(),
            tokens: Vec::new(),
            oauth_consumers: Vec::new(),
            rate_limit_per_hour: default_rate_limit(),
            anonymous_rate_limit_per_hour: default_anonymous_rate_limit(),
            rate_limit_retry_after: false,
            scope_headers_on_scope_error: false,
            oauth_token_ttl_seconds: default_oauth_ttl(),
            expired_access_token_hint: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CloudUser {
    pub username: String,
    /// The Atlassian account email: the user part of an API token's Basic credentials.
    pub email: String,
    /// Default: derived from the username.
    #[serde(default)]
    pub account_id: Option<String>,
    /// Default: derived from the username, `{8-4-4-4-12}`.
    #[serde(default)]
    pub uuid: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub created_on: Option<jiff::Timestamp>,
    /// The Atlassian account password: Cloud refuses it over the API with its own text.
    #[serde(default)]
    pub password: Option<String>,
    /// Whether the account has two-step verification on (see `requireTwoStep`).
    #[serde(default)]
    pub two_step: bool,
    /// SSH keys on the account (OpenSSH public key lines, `ssh-ed25519 AAAA... comment`): git
    /// over SSH with one of them gets this user's repository access.
    #[serde(default)]
    pub ssh_keys: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Workspace {
    pub slug: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub uuid: Option<String>,
    /// Users who belong to the workspace without explicit repository access.
    #[serde(default)]
    pub members: Vec<String>,
    #[serde(default)]
    pub repositories: Vec<CloudRepository>,
    /// The workspace's IP allowlist does not hold the caller: git is refused with 403 (the REST
    /// API still answers).
    #[serde(default)]
    pub ip_allowlist_blocks: bool,
    /// The workspace requires two-step verification: git as a user without it is refused with
    /// 403 (access tokens are not users).
    #[serde(default)]
    pub require_two_step: bool,
}

fn default_project_key() -> String {
    "PROJ".to_owned()
}

fn default_branch() -> String {
    "main".to_owned()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CloudRepository {
    pub slug: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub uuid: Option<String>,
    /// The key of the project the repository belongs to (default `PROJ`).
    #[serde(default = "default_project_key")]
    pub project: String,
    #[serde(default = "yes")]
    pub is_private: bool,
    #[serde(default = "default_branch")]
    pub mainbranch: String,
    /// username -> explicit access level.
    #[serde(default)]
    pub access: BTreeMap<String, CloudAccess>,
    /// Access keys (OpenSSH public key lines): read-only git over SSH to this repository.
    #[serde(default)]
    pub access_keys: Vec<String>,
    /// No commits yet: git's ref advertisement is the `capabilities^{}` form.
    #[serde(default)]
    pub empty: bool,
}

/// A user's explicit access to a Cloud repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CloudAccess {
    Read,
    Write,
    Admin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CloudTokenKind {
    /// User-based, granular scopes, sent as Basic `email:token`.
    ApiToken,
    RepositoryAccessToken,
    ProjectAccessToken,
    WorkspaceAccessToken,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CloudToken {
    /// The secret string.
    pub value: String,
    pub kind: CloudTokenKind,
    /// API tokens: the owner's username.
    #[serde(default)]
    pub user: Option<String>,
    /// Access tokens: the workspace slug.
    #[serde(default)]
    pub workspace: Option<String>,
    /// Repository access tokens: the repository slug. (For a project access token without
    /// `project`, this is read as the project key.)
    #[serde(default)]
    pub repository: Option<String>,
    /// Project access tokens: the project key.
    #[serde(default)]
    pub project: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub revoked: bool,
    #[serde(default)]
    pub expired: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OAuthConsumer {
    pub key: String,
    pub secret: String,
    /// Only private consumers may use the client-credentials grant.
    #[serde(default)]
    pub private: bool,
    /// The user tokens issued to this consumer act as.
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub callback_url: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// Bitbucket Data Center

fn default_version() -> String {
    "9.2.0".to_owned()
}

fn default_display_name() -> String {
    "Bitbucket".to_owned()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DataCenter {
    #[serde(default = "default_version")]
    pub version: String,
    /// Default: derived from the version (9.2.0 -> 9002000).
    #[serde(default)]
    pub build_number: Option<String>,
    /// Epoch milliseconds as a string, as Bitbucket sends it.
    #[serde(default)]
    pub build_date: Option<String>,
    #[serde(default = "default_display_name")]
    pub display_name: String,
    #[serde(default)]
    pub users: Vec<DcUser>,
    #[serde(default)]
    pub projects: Vec<DcProject>,
    #[serde(default)]
    pub tokens: Vec<DcToken>,
    #[serde(default)]
    pub oauth_clients: Vec<DcOAuthClient>,
    /// Whether a 401 for an expired token says "The access token has expired." (not confirmed
    /// in Atlassian's documentation) instead of the generic authentication failure.
    #[serde(default = "yes")]
    pub expired_token_message: bool,
    /// Serve a Bearer token it does not recognise (unknown, revoked, expired) as anonymous
    /// instead of answering 401. Default: on from version 10 (recorded on 10.4.1).
    #[serde(default)]
    pub unrecognised_token_anonymous: Option<bool>,
    /// Refuse passwords sent with Basic authentication (403). Default: on from version 10, as
    /// Bitbucket 10 ships.
    #[serde(default)]
    pub basic_auth_disabled: Option<bool>,
    /// Failed logins after which a user is behind a CAPTCHA (default 5, as Bitbucket; 0: never).
    #[serde(default = "default_captcha_after")]
    pub captcha_after_failures: u32,
    /// Token-bucket rate limiting per user (absent: off, as Bitbucket ships).
    #[serde(default)]
    pub rate_limit: Option<DcRateLimit>,
}

fn default_captcha_after() -> u32 {
    5
}

fn default_bucket_size() -> u32 {
    60
}

fn default_refill() -> f64 {
    5.0
}

/// confluence.atlassian.com/bitbucketserver0715/improving-instance-stability-with-rate-limiting-1082271237.html:
/// a bucket of `bucketSize` tokens per user, refilled at `refillPerSecond` (defaults 60 and 5).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DcRateLimit {
    #[serde(default = "default_bucket_size")]
    pub bucket_size: u32,
    #[serde(default = "default_refill")]
    pub refill_per_second: f64,
}

impl DataCenter {
    /// The major version (`10.x` -> 10; unparsable -> 0).
    pub fn major_version(&self) -> u32 {
        self.version
            .split('.')
            .next()
            .and_then(|m| m.trim().parse().ok())
            .unwrap_or(0)
    }

    pub fn serves_unrecognised_tokens_anonymously(&self) -> bool {
        self.unrecognised_token_anonymous
            .unwrap_or(self.major_version() >= 10)
    }

    pub fn basic_disabled(&self) -> bool {
        self.basic_auth_disabled
            .unwrap_or(self.major_version() >= 10)
    }
}

impl Default for DataCenter {
    fn default() -> Self {
        DataCenter {
            version: default_version(),
            build_number: None,
            build_date: None,
            display_name: default_display_name(),
            users: Vec::new(),
            projects: Vec::new(),
            tokens: Vec::new(),
            oauth_clients: Vec::new(),
            expired_token_message: true,
            unrecognised_token_anonymous: None,
            basic_auth_disabled: None,
            captcha_after_failures: default_captcha_after(),
            rate_limit: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DcUser {
    pub name: String,
    /// None: the user cannot log in with a password.
    #[serde(default)]
    pub password: Option<String>,
    /// Default: position in the list, from 1.
    #[serde(default)]
    pub id: Option<u32>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    /// Global permission (default none beyond a licensed user); ADMIN or SYS_ADMIN may read
    /// `admin/...` resources.
    #[serde(default)]
    pub global_permission: Option<DcGlobalPermission>,
    /// SSH keys on the account (OpenSSH public key lines): git over SSH with one of them gets
    /// this user's permissions.
    #[serde(default)]
    pub ssh_keys: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DcGlobalPermission {
    LicensedUser,
    ProjectCreate,
    Admin,
    SysAdmin,
}

impl DcGlobalPermission {
    pub fn as_str(self) -> &'static str {
        match self {
            DcGlobalPermission::LicensedUser => "LICENSED_USER",
            DcGlobalPermission::ProjectCreate => "PROJECT_CREATE",
            DcGlobalPermission::Admin => "ADMIN",
            DcGlobalPermission::SysAdmin => "SYS_ADMIN",
        }
    }
}

impl DcUser {
    /// Bitbucket's user slug: the name, lower-cased.
    pub fn slug(&self) -> String {
        self.name.to_lowercase()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DcProject {
    pub key: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub id: Option<u32>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub public: bool,
    /// user name -> PROJECT_READ | PROJECT_WRITE | PROJECT_ADMIN (applies to every repository).
    #[serde(default)]
    pub access: BTreeMap<String, DcPermission>,
    #[serde(default)]
    pub repositories: Vec<DcRepository>,
    /// Project access keys: git over SSH to every repository of the project. A project whose key
    /// is `~user` holds that user's personal repositories (`ssh://.../~user/slug.git`).
    #[serde(default)]
    pub access_keys: Vec<DcAccessKey>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DcRepository {
    pub slug: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub id: Option<u32>,
    #[serde(default)]
    pub public: bool,
    #[serde(default)]
    pub archived: bool,
    #[serde(default = "yes")]
    pub forkable: bool,
    /// user name -> REPO_READ | REPO_WRITE | REPO_ADMIN.
    #[serde(default)]
    pub access: BTreeMap<String, DcPermission>,
    /// Repository access keys: git over SSH to this repository only.
    #[serde(default)]
    pub access_keys: Vec<DcAccessKey>,
    /// No commits yet: git's ref advertisement is the `capabilities^{}` form.
    #[serde(default)]
    pub empty: bool,
}

/// A Data Center access key (project or repository settings, "Access keys").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DcAccessKey {
    /// The OpenSSH public key line.
    pub key: String,
    /// Default `read`.
    #[serde(default)]
    pub permission: DcKeyPermission,
}

/// What a Data Center access key allows: Bitbucket's "Read" or "Read / Write".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DcKeyPermission {
    #[default]
    Read,
    ReadWrite,
}

/// Data Center permissions, as tokens and the REST API name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DcPermission {
    ProjectRead,
    ProjectWrite,
    ProjectAdmin,
    RepoRead,
    RepoWrite,
    RepoAdmin,
}

impl DcPermission {
    pub fn as_str(self) -> &'static str {
        match self {
            DcPermission::ProjectRead => "PROJECT_READ",
            DcPermission::ProjectWrite => "PROJECT_WRITE",
            DcPermission::ProjectAdmin => "PROJECT_ADMIN",
            DcPermission::RepoRead => "REPO_READ",
            DcPermission::RepoWrite => "REPO_WRITE",
            DcPermission::RepoAdmin => "REPO_ADMIN",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DcTokenKind {
    Personal,
    Project,
    Repository,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DcToken {
    /// The token id Bitbucket shows (a 12-digit string).
    pub id: String,
    /// Default: `token-<id>`.
    #[serde(default)]
    pub name: Option<String>,
    /// The secret string.
    pub value: String,
    pub kind: DcTokenKind,
    /// Personal tokens: the owner's user name.
    #[serde(default)]
    pub user: Option<String>,
    /// Project and repository tokens: the project key.
    #[serde(default)]
    pub project: Option<String>,
    /// Repository tokens: the repository slug.
    #[serde(default)]
    pub repository: Option<String>,
    #[serde(default)]
    pub permissions: Vec<DcPermission>,
    /// Default: one day before the simulator started.
    #[serde(default)]
    pub created_date: Option<jiff::Timestamp>,
    /// Expiry fixed at creation; a token past `createdDate + expiryDays` is expired.
    #[serde(default)]
    pub expiry_days: Option<u32>,
    #[serde(default)]
    pub last_authenticated: Option<jiff::Timestamp>,
    #[serde(default)]
    pub revoked: bool,
    #[serde(default)]
    pub expired: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DcOAuthClient {
    pub client_id: String,
    pub client_secret: String,
    pub redirect_url: String,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub name: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Faults

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FaultKind {
    /// 429, plain-text body; `Retry-After: <retryAfter>` when given.
    RateLimited,
    /// `status` (default 503).
    ServerError,
    /// Waits `delayMs`, then answers normally.
    Slow,
    /// A 200 JSON body of `bytes` bytes (default 5,000,000).
    Oversized,
    /// `status` (default 302) with `Location: <location>`.
    Redirect,
    /// Closes the connection without answering.
    Reset,
    /// Answers `status` (default 200) with exactly `headers` and `body`: a recorded answer of a
    /// real server, replayed verbatim.
    Answer,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fault {
    /// Only requests to this listener.
    #[serde(default)]
    pub listener: Option<String>,
    /// Only request paths starting with this.
    #[serde(default)]
    pub path_prefix: Option<String>,
    /// Only this HTTP method.
    #[serde(default)]
    pub method: Option<String>,
    /// Only requests whose Authorization carries this secret or user name (Basic: either part;
    /// Bearer: the token).
    #[serde(default)]
    pub credential: Option<String>,
    /// How many requests it applies to; absent: all.
    #[serde(default)]
    pub times: Option<u64>,
    pub kind: FaultKind,
    #[serde(default)]
    pub retry_after: Option<u64>,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub delay_ms: Option<u64>,
    #[serde(default)]
    pub bytes: Option<usize>,
    #[serde(default)]
    pub location: Option<String>,
    /// Answer only: the headers, as recorded (names in any case).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Answer only: the body, as recorded.
    #[serde(default)]
    pub body: Option<String>,
    /// Only requests whose query string contains this.
    #[serde(default)]
    pub query_contains: Option<String>,
}
