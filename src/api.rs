//! The `BitbucketConnection` API (bbconn.dev/v1alpha1): the names users write in manifests.
//!
//! Field names follow docs/design/contract.md. CEL rules reject up front what the API server
//! can judge alone; `bbconn check` evaluates the same rules locally (kube's `cel` feature), so a
//! pipeline and a cluster refuse the same manifests.

use crate::duration::GoDuration;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Default Bitbucket Cloud API base (docs/design/contract.md).
pub const CLOUD_API_URL: &str = "https://api.bitbucket.org/2.0";
/// spec.interval's default and bounds (the CRD's CEL rules say the same). The floor stops a
/// connection from spinning the operator (`0s` made ~700 reconciles a second); Bitbucket sees one
/// set of requests per share window whatever the interval. The ceiling keeps the check live.
pub const DEFAULT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(600);
pub const MIN_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);
pub const MAX_INTERVAL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
/// spec.expiryWarning's default and ceiling (a year).
pub const DEFAULT_EXPIRY_WARNING: std::time::Duration = std::time::Duration::from_secs(720 * 3600);
pub const MAX_EXPIRY_WARNING: std::time::Duration = std::time::Duration::from_secs(8760 * 3600);

/// Default Bitbucket Cloud OAuth token endpoint (docs/design/bitbucket-api.md, developer.atlassian.com/cloud/bitbucket/oauth-2).
pub const CLOUD_TOKEN_URL: &str = "https://bitbucket.org/site/oauth2/access_token";

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "bbconn.dev",
    version = "v1alpha1",
    kind = "BitbucketConnection",
    plural = "bitbucketconnections",
    namespaced,
    status = "BitbucketConnectionStatus",
    shortname = "bbconn",
    shortname = "bbc",
    category = "all",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Flavor","type":"string","jsonPath":".spec.flavor"}"#,
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".spec.url","priority":1}"#,
    // Discovered connections name what they follow (Secret/…, Application/…, GitRepository/…).
    printcolumn = r#"{"name":"Source","type":"string","jsonPath":".metadata.annotations.bbconn\\.dev/source"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    cel,
    validation = Rule::new("!has(self.spec.url) || (isURL(self.spec.url) && url(self.spec.url).getScheme() in ['http', 'https'])").message("spec.url must be an absolute http(s) URL").field_path(".spec.url"),
    validation = Rule::new("!has(self.spec.auth) || (!has(self.spec.auth.tokenUrl) || (has(self.spec.auth.method) && self.spec.auth.method in ['OAuthClientCredentials', 'OAuthApplicationLink']))").message("spec.auth.tokenUrl is only used by the OAuth methods").field_path(".spec.auth.tokenUrl"),
    validation = Rule::new("!has(self.spec.auth) || (!has(self.spec.auth.tokenUrl) || (isURL(self.spec.auth.tokenUrl) && url(self.spec.auth.tokenUrl).getScheme() in ['http', 'https']))").message("spec.auth.tokenUrl must be an absolute http(s) URL").field_path(".spec.auth.tokenUrl"),
    validation = Rule::new("!has(self.spec.auth) || (self.spec.flavor == 'Cloud' || !has(self.spec.auth.method) || !(self.spec.auth.method in ['AppPassword', 'ApiToken', 'OAuthClientCredentials']))").message("methods AppPassword, ApiToken and OAuthClientCredentials exist only on Bitbucket Cloud (Data Center has HTTP access tokens, Basic and application links)").field_path(".spec.auth.method"),
    validation = Rule::new("has(self.spec.auth) || (has(self.spec.git) && has(self.spec.git.transport) && self.spec.git.transport == 'SSH')").message("spec.auth is required unless spec.git.transport is SSH (an SSH-only connection is checked with the key in spec.git.ssh.secretRef)").field_path(".spec.auth"),
    validation = Rule::new("!has(self.spec.git) || !has(self.spec.git.transport) || self.spec.git.transport != 'SSH' || (has(self.spec.git.ssh) && has(self.spec.git.ssh.secretRef))").message("spec.git.transport SSH needs spec.git.ssh.secretRef: the Secret with the consumer's private key").field_path(".spec.git.ssh"),
    validation = Rule::new("!has(self.spec.git) || !has(self.spec.git.ssh) || (has(self.spec.git.transport) && self.spec.git.transport == 'SSH')").message("spec.git.ssh is read only with spec.git.transport: SSH").field_path(".spec.git.ssh"),
    validation = Rule::new("has(self.spec.auth) || self.spec.flavor == 'Cloud' || !has(self.spec.git) || !has(self.spec.git.ssh) || has(self.spec.git.ssh.url) || (has(self.spec.git.ssh.secretRef) && has(self.spec.git.ssh.secretRef.format) && self.spec.git.ssh.secretRef.format == 'ArgoCD')").message("spec.git.ssh.url is required for a Data Center connection without spec.auth: bbconn cannot ask Data Center's REST API for the SSH clone URL without a credential").field_path(".spec.git.ssh.url"),
    validation = Rule::new("self.spec.flavor == 'Cloud' || has(self.spec.url)").message("spec.url is required for a Data Center server").field_path(".spec.url"),
    validation = Rule::new("!has(self.spec.auth) || (has(self.spec.auth.method) || has(self.spec.auth.secretRef.format))").message("spec.auth.method is required, unless spec.auth.secretRef.format names the consumer whose Secret is used (then it is inferred from the Secret)").field_path(".spec.auth.method"),
    validation = Rule::new("!has(self.spec.auth) || (!has(self.spec.auth.secretRef.format) || !has(self.spec.auth.method) || self.spec.auth.method in ['AccessToken', 'ApiToken', 'Basic', 'AppPassword'])").message("spec.auth.secretRef.format reads a consumer's git credentials (username and password, or bearerToken): it goes with methods AccessToken, ApiToken, Basic or AppPassword, not with the OAuth methods").field_path(".spec.auth.method"),
    validation = Rule::new("!has(self.spec.auth) || (!has(self.spec.auth.secretRef.format) || !has(self.spec.auth.secretRef.keys))").message("spec.auth.secretRef.keys cannot be combined with secretRef.format: the consumer reads its Secret under fixed key names, so bbconn reads the same ones").field_path(".spec.auth.secretRef.keys"),
    validation = Rule::new("!has(self.spec.auth) || (!has(self.spec.auth.secretRef.format) || !has(self.spec.git) || !has(self.spec.git.username))").message("spec.git.username cannot be combined with secretRef.format: git is checked with the user name in the consumer's Secret, as the consumer sends it").field_path(".spec.git.username"),
    validation = Rule::new("!has(self.spec.auth) || (!has(self.spec.auth.secretRef.keys) || !has(self.spec.auth.secretRef.keys.token) || (has(self.spec.auth.method) && self.spec.auth.method in ['AccessToken', 'ApiToken']))").message("secretRef.keys.token is only read by methods AccessToken and ApiToken").field_path(".spec.auth.secretRef.keys.token"),
    validation = Rule::new("!has(self.spec.auth) || (!has(self.spec.auth.secretRef.keys) || !has(self.spec.auth.secretRef.keys.password) || (has(self.spec.auth.method) && self.spec.auth.method in ['Basic', 'AppPassword']))").message("secretRef.keys.password is only read by methods Basic and AppPassword").field_path(".spec.auth.secretRef.keys.password"),
    validation = Rule::new("!has(self.spec.auth) || (!has(self.spec.auth.secretRef.keys) || (!has(self.spec.auth.secretRef.keys.clientId) && !has(self.spec.auth.secretRef.keys.clientSecret)) || (has(self.spec.auth.method) && self.spec.auth.method in ['OAuthClientCredentials', 'OAuthApplicationLink']))").message("secretRef.keys.clientId and clientSecret are only read by the OAuth methods").field_path(".spec.auth.secretRef.keys"),
    validation = Rule::new("!has(self.spec.auth) || (!has(self.spec.auth.secretRef.keys) || !has(self.spec.auth.secretRef.keys.redirectUrl) || (has(self.spec.auth.method) && self.spec.auth.method == 'OAuthApplicationLink'))").message("secretRef.keys.redirectUrl is only read by method OAuthApplicationLink").field_path(".spec.auth.secretRef.keys.redirectUrl"),
    // Guarded by the pattern, so a value the schema already refuses is not also a CEL error.
    validation = Rule::new("!has(self.spec.interval) || !self.spec.interval.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self.spec.interval) >= duration('1s') && duration(self.spec.interval) <= duration('24h'))").message("spec.interval must be between 1s and 24h").field_path(".spec.interval"),
    validation = Rule::new("!has(self.spec.expiryWarning) || !self.spec.expiryWarning.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self.spec.expiryWarning) <= duration('8760h')").message("spec.expiryWarning must be at most 8760h (a year)").field_path(".spec.expiryWarning")
)]
#[serde(rename_all = "camelCase")]
pub struct BitbucketConnectionSpec {
    /// Cloud or DataCenter (Server and Data Center share one REST API).
    pub flavor: Flavor,
    /// Base URL. Cloud: defaults to https://api.bitbucket.org/2.0. Data Center: the server's base URL, with its context path if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub url: Option<String>,
    /// The REST credential. Optional only with spec.git.transport SSH: the connection is then
    /// checked over SSH alone, with the key in spec.git.ssh.secretRef.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<Auth>,
    /// Requirement bundles named after the systems that consume the connection.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<Profile>,
    /// Explicit requirements, merged with the profiles'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirements: Option<Box<Requirements>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Box<Tls>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Box<Network>>,
    /// What the consumer does with the listed repositories over git (default: Read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<Git>,
    /// How often to re-check when nothing changed (Go duration, e.g. 10m), from 1s to 24h. Default 10m.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::duration::field::interval"
    )]
    #[schemars(
        regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"),
        length(max = 64)
    )]
    pub interval: Option<GoDuration>,
    /// Warn this long before a token or certificate expires (Go duration), at most 8760h. Default 720h.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::duration::field::expiry_warning"
    )]
    #[schemars(
        regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"),
        length(max = 64)
    )]
    pub expiry_warning: Option<GoDuration>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum Flavor {
    Cloud,
    DataCenter,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Auth {
    /// How bbconn sends the credential to the REST API. Required, unless secretRef.format is
    /// set: it is then inferred from the consumer's Secret (bearerToken: AccessToken; username
    /// and password: Basic on Data Center; on Cloud AccessToken with username x-token-auth, else
    /// ApiToken), and status.credential.method says what it was taken as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<AuthMethod>,
    pub secret_ref: SecretRef,
    /// OAuth only. Cloud default: https://bitbucket.org/site/oauth2/access_token; Data Center: {url}/rest/oauth2/latest/token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub token_url: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum AuthMethod {
    /// Cloud repository/project/workspace access token, or Data Center HTTP access token (Bearer).
    AccessToken,
    /// Cloud API token with scopes, sent as Basic with the Atlassian account email.
    ApiToken,
    /// Cloud OAuth consumer, client-credentials grant.
    OAuthClientCredentials,
    /// Data Center incoming application link, or Cloud consumer used with the authorization-code grant.
    OAuthApplicationLink,
    /// User name and password (Data Center). Works, but discouraged.
    Basic,
    /// Cloud app password: retired by Atlassian on 2026-07-28.
    AppPassword,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// A Secret in the connection's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key names inside the Secret, where they differ from the defaults. Not with format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<Box<SecretKeys>>,
    /// The Secret is a consumer's own, in its layout; absent: bbconn's keys (see keys).
    /// ArgoCD: an Argo CD repository Secret (username and password, or bearerToken;
    /// forceHttpBasicAuth "true" prefers username and password; url, type, project and labels
    /// are not read). Flux: a GitRepository auth Secret (username and password, or bearerToken).
    /// git is then checked with exactly what the consumer sends: username and password as
    /// Basic, or Authorization: Bearer with bearerToken. The REST checks send the same secret by
    /// spec.auth.method; a Cloud API token's REST calls need the Atlassian account email, taken
    /// from the username when it is one, else from an extra key email (Argo CD and Flux ignore
    /// it). An optional tokenId key is read as with the default layout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<SecretFormat>,
}

/// Whose layout the referenced Secret has.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum SecretFormat {
    /// An Argo CD repository (or repo-creds) Secret.
    #[serde(rename = "ArgoCD")]
    ArgoCd,
    /// A Flux GitRepository spec.secretRef Secret.
    Flux,
}

impl SecretFormat {
    /// The consumer, as people name it.
    pub fn consumer(self) -> &'static str {
        match self {
            SecretFormat::ArgoCd => "Argo CD",
            SecretFormat::Flux => "Flux",
        }
    }
}

/// Key names in the Secret. Defaults: `token`; `username` + `token`; `clientId` + `clientSecret`;
/// `clientId` + `clientSecret` + `redirectUrl`; `username` + `password`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeys {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
}

#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    OciResourceManager,
    OxSecurity,
    TerraformEnterprise,
    Codescan,
    Hackolade,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Requirements {
    /// Cloud token scopes, e.g. read:repository:bitbucket.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Data Center token permissions, e.g. REPO_ADMIN.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<DcPermission>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repositories: Vec<RepositoryRequirement>,
}

#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema,
)]
#[allow(clippy::enum_variant_names)] // the names are Bitbucket's
pub enum DcPermission {
    #[serde(rename = "PROJECT_READ")]
    ProjectRead,
    #[serde(rename = "PROJECT_WRITE")]
    ProjectWrite,
    #[serde(rename = "PROJECT_ADMIN")]
    ProjectAdmin,
    #[serde(rename = "REPO_READ")]
    RepoRead,
    #[serde(rename = "REPO_WRITE")]
    RepoWrite,
    #[serde(rename = "REPO_ADMIN")]
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
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "PROJECT_READ" => DcPermission::ProjectRead,
            "PROJECT_WRITE" => DcPermission::ProjectWrite,
            "PROJECT_ADMIN" => DcPermission::ProjectAdmin,
            "REPO_READ" => DcPermission::RepoRead,
            "REPO_WRITE" => DcPermission::RepoWrite,
            "REPO_ADMIN" => DcPermission::RepoAdmin,
            _ => return None,
        })
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryRequirement {
    /// Data Center: PROJECT_KEY/slug; Cloud: workspace/slug.
    #[schemars(regex(pattern = r"^[^/\s]+/[^/\s]+$"), length(max = 512))]
    pub name: String,
    /// Read, Write or Admin. Default: what the profiles ask for, else Read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<Access>,
}

#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema,
)]
pub enum Access {
    Read,
    Write,
    Admin,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Tls {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle_ref: Option<CaBundleRef>,
    /// Expected SHA-256 fingerprint of the server's leaf certificate: hex, colons optional, any case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9A-Fa-f]{2}:?){31}[0-9A-Fa-f]{2}$"))]
    pub pinned_sha256: Option<String>,
    /// Trust the public web roots (Mozilla's set) besides the CA bundle. Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_public_roots: Option<bool>,
    /// The consumer does not verify the server's certificate (an Argo CD repository Secret's
    /// `insecure: "true"`): a certificate that would not verify does not fail TLSVerified, and
    /// is a Warning (TlsVerificationSkipped), as is the setting itself. bbconn's own requests to
    /// the server then go unverified too, as the consumer's do. The pin still applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_skip_verify: Option<bool>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaBundleRef {
    pub kind: CaBundleKind,
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Default: ca.crt
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum CaBundleKind {
    ConfigMap,
    Secret,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Network {
    /// Where the server is, as the consumer reaches it. Public: from the internet (a public
    /// address); Private: a private server a consumer outside reaches through
    /// privateEndpoint; Internal: the consumer runs on the server's own network (Argo CD or Flux
    /// in this cluster) and connects directly, whatever the address class. Default Public.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposure: Option<Exposure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_endpoint: Option<PrivateEndpoint>,
    /// Ports a connection may use. Default [443].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_ports: Option<Vec<Port>>,
    /// How the consumer leaves the cluster to reach a Public server: REST, the token endpoint
    /// and git all go through it. Default: the operator's HTTPS_PROXY / NO_PROXY.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress_proxy: Option<EgressProxy>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EgressProxy {
    /// An HTTP CONNECT proxy, e.g. http://proxy.corp:3128. Absent: the proxy the consumer's
    /// Secret names (secretRef with a format).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^http://[^/\s]+/?$"), length(max = 2048))]
    pub proxy_url: Option<String>,
    /// A Secret in the connection's namespace with keys username and password, sent to the
    /// proxy as Basic Proxy-Authorization; or, with a format, the consumer's own proxy Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<EgressProxySecretRef>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EgressProxySecretRef {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Flux: the Secret a GitRepository's spec.proxySecretRef names (address, optional
    /// username and password). ArgoCD: an Argo CD repository Secret (proxy, a URL whose user
    /// information is the credential). Either one's proxy is used where proxyUrl is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<SecretFormat>,
}

/// A TCP port, 1-65535.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(transparent)]
pub struct Port(#[schemars(range(min = 1, max = 65535))] pub u32);

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum Exposure {
    #[default]
    Public,
    Private,
    Internal,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrivateEndpoint {
    /// An HTTP CONNECT proxy that reaches the private server, e.g. http://egress-proxy.infra:3128.
    #[schemars(regex(pattern = r"^http://[^/\s]+/?$"), length(max = 2048))]
    pub proxy_url: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Git {
    /// Read: clone and fetch (the git-upload-pack advertisement). Write: also push, proved by the
    /// git-receive-pack advertisement (bbconn never pushes). Default Read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<GitAccessLevel>,
    /// The user name the consumer sends to git with the Secret's token or password, when it is
    /// not the one git needs for this method (status.git.username names that one). bbconn then
    /// checks git with exactly this name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub username: Option<String>,
    /// How the consumer reaches git: HTTPS (default) or SSH.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<GitTransport>,
    /// Transport SSH only: where the consumer connects, and its key and host keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<Box<GitSsh>>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default, JsonSchema)]
pub enum GitTransport {
    #[default]
    #[serde(rename = "HTTPS")]
    Https,
    #[serde(rename = "SSH")]
    Ssh,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitSsh {
    /// Where the consumer connects: ssh://USER@HOST[:PORT]; each repository's path is appended
    /// as Bitbucket writes it. Default: Cloud ssh://git@ssh.bitbucket.org; Data Center the SSH
    /// clone URL its REST answer advertises. An Argo CD Secret's url overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^ssh://[^/\s]+(/.*)?$"), length(max = 2048))]
    pub url: Option<String>,
    /// The consumer's key. Absent format: keys identity (an OpenSSH or PEM private key),
    /// known_hosts and optional password (the key's passphrase), as Flux reads them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SshSecretRef>,
    /// Host keys kept outside the Secret, e.g. Argo CD's argocd-ssh-known-hosts-cm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_hosts_ref: Option<KnownHostsRef>,
    /// The consumer does not check the server's host key (an Argo CD repository Secret's
    /// `insecure: "true"`): a key known_hosts lacks or contradicts does not fail
    /// HostKeyVerified, and is a Warning (HostKeyCheckSkipped), as is the setting itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_ignore_host_key: Option<bool>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SshSecretRef {
    /// A Secret in the connection's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Flux: identity, known_hosts, password. ArgoCD: an Argo CD repository Secret
    /// (sshPrivateKey; its url overrides spec.git.ssh.url; host keys from knownHostsRef).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<SecretFormat>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KnownHostsRef {
    pub kind: CaBundleKind,
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Default: ssh_known_hosts (Argo CD's key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

#[derive(
    Serialize,
    Deserialize,
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    JsonSchema,
)]
pub enum GitAccessLevel {
    #[default]
    Read,
    Write,
}

// ---------------------------------------------------------------------------------------------
// Status

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BitbucketConnectionStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_checked_time: Option<String>,
    /// The value of the bbconn.dev/requested-at annotation last handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_requested_at: Option<String>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// One entry per failing or warning check, in check order.
    #[serde(default)]
    pub problems: Vec<Problem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<Box<ServerInfo>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<Box<CertificateInfo>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<Box<CredentialInfo>>,
    /// How the consumer reaches the repositories over git: the clone URLs and the credential form
    /// to configure (never the secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<Box<GitInfo>>,
    /// A credential Bitbucket refused, which bbconn does not send again while what this records
    /// is unchanged: read by every process that starts or becomes leader before it sends
    /// anything. Never the credential or a digest of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withheld: Option<Box<WithheldCredential>>,
    /// In the operator's cache only: a digest of the full status it stands for (see
    /// `status::compact`). Never serialized.
    #[serde(skip)]
    #[schemars(skip)]
    pub digest: Option<u64>,
    /// In the operator's cache only: the conditions without their text, in place of
    /// `conditions` (see `status::compact`). Never serialized.
    #[serde(skip)]
    #[schemars(skip)]
    pub kept: Option<Box<[KeptCondition]>>,
}

/// A condition as the operator's cache keeps it: what reconciling and the metrics read, in 24
/// bytes (its names the catalogue's, its message a digest, its transition time in seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeptCondition {
    pub message_digest: u64,
    /// lastTransitionTime, in Unix seconds.
    pub last_transition: i64,
    pub type_: crate::catalogue::Name,
    pub status: crate::catalogue::Name,
    pub reason: crate::catalogue::Name,
}

impl BitbucketConnectionStatus {
    /// Each condition's (type, status, reason), from a full status or the cache's form.
    pub fn condition_states(&self) -> impl Iterator<Item = (&str, &str, &str)> + '_ {
        let full = self
            .conditions
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str(), c.reason.as_str()));
        let kept = self
            .kept
            .iter()
            .flat_map(|k| k.iter())
            .map(|c| (c.type_.as_str(), c.status.as_str(), c.reason.as_str()));
        full.chain(kept)
    }

    /// The (status, reason) of one condition type.
    pub fn condition_state(&self, type_: &str) -> Option<(&str, &str)> {
        self.condition_states()
            .find(|(t, _, _)| *t == type_)
            .map(|(_, s, r)| (s, r))
    }
}

/// metav1.Condition, with its schema (k8s-openapi's type has none for CRDs).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// True, False or Unknown.
    pub status: String,
    pub reason: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    pub last_transition_time: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    pub check: String,
    pub cause: String,
    /// Error or Warning.
    pub severity: String,
    pub message: String,
    pub remedy: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flavor: Option<Flavor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default)]
    pub addresses: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificateInfo {
    pub subject: String,
    pub issuer: String,
    pub not_after: String,
    pub sha256: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialInfo {
    pub method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub permissions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Where expiresAt comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry_source: Option<ExpirySource>,
    /// Bitbucket rejected this credential, and bbconn has not sent it since then: it is sent
    /// again only when the Secret, the spec or bbconn.dev/requested-at changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withheld_since: Option<String>,
}

/// A refused credential, and what its withholding rests on.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WithheldCredential {
    /// Rest (spec.auth's), Git (as git is sent it over HTTPS) or SshKey.
    pub credential: crate::withhold::Kind,
    /// The refusal: its cause and Bitbucket's answer.
    pub cause: String,
    pub message: String,
    /// Since when the credential has not been sent.
    pub since: String,
    /// The referenced Secrets' resourceVersions when it was refused: a change to any sends it again.
    #[serde(default)]
    pub secrets: Vec<SecretVersion>,
    /// The spec's generation when it was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// The bbconn.dev/requested-at value handled when it was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretVersion {
    pub name: String,
    pub resource_version: String,
}

/// Who says when the credential expires.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ExpirySource {
    /// The token's own data in Bitbucket.
    Bitbucket,
    /// The Secret's bbconn.dev/expires-at annotation.
    Declared,
    /// Neither.
    Unknown,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitInfo {
    /// Read or Write, as checked.
    pub access: GitAccessLevel,
    /// Basic or Bearer: how git sends the credential.
    pub scheme: String,
    /// The user name to configure in the consumer with the token or password (Basic only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// How to configure the consumer, in words.
    pub configure: String,
    #[serde(default)]
    pub repositories: Vec<GitRepository>,
    /// Transport SSH: the server's host keys and the known_hosts lines the consumer needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<Box<SshInfo>>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SshInfo {
    /// Where git over SSH was checked: ssh://USER@HOST:PORT.
    pub url: String,
    /// The host keys the server holds, by type, with their SHA256 fingerprints.
    #[serde(default)]
    pub host_keys: Vec<HostKeyInfo>,
    /// The known_hosts lines the consumer needs for this host and port, one per key type.
    #[serde(default)]
    pub known_hosts: Vec<String>,
    /// The SHA256 fingerprint of the consumer's public key (never the key itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_fingerprint: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostKeyInfo {
    /// e.g. ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa.
    #[serde(rename = "type")]
    pub type_: String,
    /// SHA256:base64, as ssh-keygen -l prints it.
    pub sha256: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitRepository {
    pub name: String,
    /// The https clone URL Bitbucket advertises for it (links.clone), without user info.
    pub clone_url: String,
}

impl BitbucketConnectionSpec {
    pub fn git_access(&self) -> GitAccessLevel {
        self.git.as_ref().and_then(|g| g.access).unwrap_or_default()
    }

    pub fn git_transport(&self) -> GitTransport {
        self.git
            .as_ref()
            .and_then(|g| g.transport)
            .unwrap_or_default()
    }

    /// The Secret spec.auth.secretRef names.
    pub fn auth_secret(&self) -> Option<&str> {
        self.auth.as_ref().map(|a| a.secret_ref.name.as_str())
    }

    /// The Secret holding the consumer's SSH key (transport SSH).
    pub fn ssh_secret(&self) -> Option<&str> {
        self.git_ssh()
            .and_then(|s| s.secret_ref.as_ref())
            .map(|r| r.name.as_str())
    }

    /// spec.git.ssh.knownHostsRef (transport SSH).
    pub fn known_hosts_ref(&self) -> Option<&KnownHostsRef> {
        self.git_ssh().and_then(|s| s.known_hosts_ref.as_ref())
    }

    /// The Secret a remedy names: spec.auth's, else the SSH key's.
    pub fn credential_secret(&self) -> &str {
        self.auth_secret().or(self.ssh_secret()).unwrap_or_default()
    }

    /// spec.git.ssh, with transport SSH.
    pub fn git_ssh(&self) -> Option<&GitSsh> {
        match self.git_transport() {
            GitTransport::Ssh => self.git.as_ref().and_then(|g| g.ssh.as_deref()),
            GitTransport::Https => None,
        }
    }

    pub fn base_url(&self) -> &str {
        match (&self.url, self.flavor) {
            (Some(u), _) => u.as_str(),
            (None, Flavor::Cloud) => CLOUD_API_URL,
            // CEL requires url for Data Center; an empty base fails URL parsing with a clear error.
            (None, Flavor::DataCenter) => "",
        }
    }
    pub fn exposure(&self) -> Exposure {
        self.network
            .as_ref()
            .and_then(|n| n.exposure)
            .unwrap_or_default()
    }
    pub fn allowed_ports(&self) -> Vec<u16> {
        match self.network.as_ref().and_then(|n| n.allowed_ports.as_ref()) {
            Some(ports) => ports
                .iter()
                .filter_map(|p| u16::try_from(p.0).ok())
                .collect(),
            None => vec![443],
        }
    }
    pub fn egress_proxy(&self) -> Option<&EgressProxy> {
        self.network.as_ref().and_then(|n| n.egress_proxy.as_ref())
    }
    /// The format of the egress proxy's Secret: None is bbconn's own (username, password).
    pub fn egress_proxy_format(&self) -> Option<SecretFormat> {
        self.egress_proxy()
            .and_then(|e| e.secret_ref.as_ref())
            .and_then(|r| r.format)
    }
    /// The Secret holding the egress proxy's credentials, where one is named.
    pub fn egress_proxy_secret(&self) -> Option<&str> {
        self.egress_proxy()
            .and_then(|e| e.secret_ref.as_ref())
            .map(|r| r.name.as_str())
    }
    pub fn proxy_url(&self) -> Option<&str> {
        self.network
            .as_ref()
            .and_then(|n| n.private_endpoint.as_ref())
            .map(|p| p.proxy_url.as_str())
    }
    /// spec.interval within [`MIN_INTERVAL`, `MAX_INTERVAL`]: the CRD refuses values outside,
    /// but objects stored under an older CRD may hold them.
    pub fn interval(&self) -> std::time::Duration {
        self.interval
            .map(GoDuration::get)
            .unwrap_or(DEFAULT_INTERVAL)
            .clamp(MIN_INTERVAL, MAX_INTERVAL)
    }
    /// spec.expiryWarning, at most [`MAX_EXPIRY_WARNING`].
    pub fn expiry_warning(&self) -> std::time::Duration {
        self.expiry_warning
            .map(GoDuration::get)
            .unwrap_or(DEFAULT_EXPIRY_WARNING)
            .min(MAX_EXPIRY_WARNING)
    }
}
