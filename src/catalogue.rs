//! The one catalogue of checks and causes.
//!
//! Every cause a user can see (a condition's reason, `status.problems[].cause`, an event, a metric
//! label, a line of `bbconn check`, docs/causes.md) is a row of [`CAUSES`]. Nothing else spells a
//! cause's name, decides whether it stalls, or words its remedy.

mod consumers;

pub use consumers::{CONSUMER_TEXTS, ConsumerText};
use serde::Serialize;
use std::fmt;

/// The checks, in the order they run. Each is one condition type of docs/design/contract.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Check {
    CredentialsResolved,
    NetworkPathValid,
    Reachable,
    #[serde(rename = "TLSVerified")]
    TlsVerified,
    HostKeyVerified,
    Authenticated,
    ScopesSufficient,
    RepositoryAccess,
    GitAccess,
}

impl Check {
    pub const ALL: [Check; 9] = [
        Check::CredentialsResolved,
        Check::NetworkPathValid,
        Check::Reachable,
        Check::TlsVerified,
        Check::HostKeyVerified,
        Check::Authenticated,
        Check::ScopesSufficient,
        Check::RepositoryAccess,
        Check::GitAccess,
    ];

    /// The condition type.
    pub fn as_str(self) -> &'static str {
        match self {
            Check::CredentialsResolved => "CredentialsResolved",
            Check::NetworkPathValid => "NetworkPathValid",
            Check::Reachable => "Reachable",
            Check::TlsVerified => "TLSVerified",
            Check::HostKeyVerified => "HostKeyVerified",
            Check::Authenticated => "Authenticated",
            Check::ScopesSufficient => "ScopesSufficient",
            Check::RepositoryAccess => "RepositoryAccess",
            Check::GitAccess => "GitAccess",
        }
    }

    /// What True means, for docs and for the message of a passing condition.
    pub fn meaning(self) -> &'static str {
        match self {
            Check::CredentialsResolved => {
                "the Secret exists, is readable, and holds well-formed values under the expected keys"
            }
            Check::NetworkPathValid => {
                "the server's address class matches spec.network.exposure (Internal: any class), and a private server has a usable private endpoint"
            }
            Check::Reachable => "DNS resolves and a TCP connection opens on an allowed port",
            Check::TlsVerified => {
                "the certificate chains to a trusted root, names the host, is in its validity window, and matches the pin"
            }
            Check::HostKeyVerified => {
                "transport SSH only: known_hosts has lines for the host (as [host]:port off port 22), and for every key type they list that the server also holds, the server's key is the one listed (and at least one such type exists); so whichever of them the consumer negotiates verifies"
            }
            Check::Authenticated => "the server accepts the credential",
            Check::ScopesSufficient => "the credential holds every required scope or permission",
            Check::RepositoryAccess => {
                "every listed repository exists and the credential has the required access to it"
            }
            Check::GitAccess => {
                "git works for every listed repository as the consumer will use it: over HTTPS the smart-HTTP advertisement of git-upload-pack (and of git-receive-pack when spec.git.access is Write) answers with refs for this credential, sent in the username form that git needs for it; over SSH the same advertisements answer on an exec channel for the consumer's key"
            }
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a cause does to its condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Condition False. `stalls`: retrying will not fix it until the spec, Secret or server changes
    /// (kstatus reads `Stalled=True` as Failed).
    Fail { stalls: bool },
    /// Condition Unknown, Ready Unknown, retried with backoff: one blip must not flip a Ready connection.
    Transient,
    /// Condition stays True; a Warning problem.
    Warn,
    /// Condition Unknown: Bitbucket offers no side-effect-free way to verify it. A Warning problem;
    /// it does not hold Ready back, since nothing the user can change would let bbconn verify it.
    Unverifiable,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "Error",
            Severity::Warning => "Warning",
        }
    }
}

/// One row of the catalogue.
#[derive(Debug)]
pub struct Entry {
    pub cause: Cause,
    /// The check it belongs to; `None`: any check (server errors, rate limits).
    pub check: Option<Check>,
    pub effect: Effect,
    /// Where it comes from: a seed page, or why bbconn added it.
    pub source: &'static str,
    /// When it is reported.
    pub when: &'static str,
    /// What to do. Placeholders: {secret} (namespace/name), {host}, {port}, {proxy}.
    pub remedy: &'static str,
}

macro_rules! catalogue {
    ($( $cause:ident { check: $check:expr, effect: $effect:expr, source: $source:literal, when: $when:literal, remedy: $remedy:literal } )*) => {
        /// A cause: the `reason` of a condition and `problems[].cause`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Cause { $( $cause, )* }

        pub static CAUSES: &[Entry] = &[ $( Entry {
            cause: Cause::$cause, check: $check, effect: $effect, source: $source, when: $when, remedy: $remedy,
        }, )* ];

        impl Cause {
            pub fn as_str(self) -> &'static str {
                match self { $( Cause::$cause => stringify!($cause), )* }
            }
            pub fn parse(s: &str) -> Option<Cause> {
                match s { $( stringify!($cause) => Some(Cause::$cause), )* _ => None }
            }
        }
    };
}

use Check::*;
const FAIL: Effect = Effect::Fail { stalls: true };
const RETRY: Effect = Effect::Fail { stalls: false };

catalogue! {
    SecretNotFound { check: Some(CredentialsResolved), effect: FAIL, source: "seed 000: confirm you can view the access token",
        when: "the referenced Secret does not exist",
        remedy: "Create Secret {secret} holding the credential, or fix spec.auth.secretRef.name (the Secret must be in the connection's namespace)." }
    SecretForbidden { check: Some(CredentialsResolved), effect: FAIL, source: "seed 000: policies to view the secret",
        when: "the operator may not read the Secret",
        remedy: "Allow bbconn's ServiceAccount to get Secret {secret} (the chart's RBAC grants get on Secrets in the watched namespaces)." }
    SecretKeyMissing { check: Some(CredentialsResolved), effect: FAIL, source: "bbconn",
        when: "a key the auth method needs is absent or empty",
        remedy: "Add the key the message names to Secret {secret}, or name the key that holds it under spec.auth.secretRef.keys; with spec.auth.secretRef.format, the Secret is the consumer's own: add the key under the name that consumer reads (Argo CD and Flux: username and password, or bearerToken)." }
    CredentialMalformed { check: Some(CredentialsResolved), effect: FAIL, source: "bbconn",
        when: "a value has surrounding whitespace, a newline, is not UTF-8, or is otherwise unusable",
        remedy: "Store the value exactly as Bitbucket issued it in Secret {secret}: no trailing newline or spaces (use kubectl create secret --from-literal, or printf '%s' instead of echo)." }
    InvalidSpec { check: None, effect: FAIL, source: "bbconn",
        when: "the spec asks for something that cannot be checked (e.g. a profile for the other flavour)",
        remedy: "Fix the spec as the message says." }
    PublicServerPrivateAddress { check: Some(NetworkPathValid), effect: FAIL, source: "seed 000: for a public server, use a public IP address",
        when: "exposure is Public, but the host resolves only to private addresses",
        remedy: "Give {host} a public IP address; if the server is private and the consumer runs on its network (Argo CD, Flux in the cluster), set spec.network.exposure: Internal; if the consumer reaches it from outside, set exposure: Private and a private endpoint." }
    PrivateEndpointRequired { check: Some(NetworkPathValid), effect: FAIL, source: "seed 000: for a private server, use a certificate and private endpoint",
        when: "the host resolves to a private address and no private endpoint is set",
        remedy: "Set spec.network.privateEndpoint.proxyUrl to an HTTP CONNECT proxy that reaches {host}, or expose the server on a public address; if the consumer runs on the server's network (Argo CD, Flux in the cluster), set spec.network.exposure: Internal instead." }
    PrivateEndpointUnreachable { check: Some(NetworkPathValid), effect: RETRY, source: "seed 000: private endpoint",
        when: "the private endpoint does not answer or refuses the tunnel",
        remedy: "Check that the proxy {proxy} is running and allows CONNECT to {host}:{port}." }
    EgressProxyUnreachable { check: Some(NetworkPathValid), effect: RETRY, source: "bbconn: consumers leave the cluster through HTTPS_PROXY",
        when: "the egress proxy does not answer, refuses the tunnel, or answers CONNECT with a status other than 200 and 407",
        remedy: "Check that the egress proxy (spec.network.egressProxy.proxyUrl, else the operator's HTTPS_PROXY / --egress-proxy) is running and allows CONNECT to {host}:{port}; if the server is reached directly, add {host} to NO_PROXY." }
    EgressProxyAuthRequired { check: Some(NetworkPathValid), effect: FAIL, source: "RFC 9110 section 15.5.8: 407 Proxy Authentication Required",
        when: "the egress proxy answers CONNECT with 407: it wants (other) proxy credentials",
        remedy: "Set spec.network.egressProxy.secretRef to a Secret with keys username and password that the proxy accepts (Basic proxy auth), or correct them; the consumer needs the same proxy credentials." }
    EgressProxyInvalid { check: Some(NetworkPathValid), effect: FAIL, source: "Flux GitRepository spec.proxySecretRef (address: http, https or socks5) and Argo CD's repository proxy: bbconn tunnels by HTTP CONNECT only",
        when: "the proxy the consumer's Secret names (spec.network.egressProxy.secretRef with a format) has no address, is not a URL, or is not an http:// proxy",
        remedy: "Give the consumer's proxy Secret (spec.network.egressProxy.secretRef) an http:// HTTP CONNECT proxy address; bbconn cannot check a path through an https:// or SOCKS5 proxy, so check that one by hand." }
    PrivateServerPublicAddress { check: Some(NetworkPathValid), effect: FAIL, source: "bbconn: the address class must match spec.network.exposure",
        when: "exposure is Private, but the host resolves to public addresses",
        remedy: "If {host} is meant to be public, set spec.network.exposure: Public; otherwise find out why its name resolves to a public address." }
    DestinationNotAllowed { check: Some(NetworkPathValid), effect: FAIL, source: "bbconn: a connection must not become a way to probe the cluster's network",
        when: "the operator's destination policy forbids the address (by default link-local, which holds cloud metadata services)",
        remedy: "Point spec.url at the Bitbucket server; bbconn does not connect to denied destinations (see --deny-destination)." }
    PortNotAllowed { check: Some(Reachable), effect: FAIL, source: "seed 000: use port 443 (Bitbucket Server defaults: 7990 HTTP, 8443 HTTPS)",
        when: "the URL's port is not in spec.network.allowedPorts (default 443)",
        remedy: "Serve Bitbucket over HTTPS on port 443 (e.g. a reverse proxy in front of port {port}) and drop the port from spec.url, or add {port} to spec.network.allowedPorts if every consumer accepts it." }
    PlainHttpNotAllowed { check: Some(Reachable), effect: FAIL, source: "seed 000: only HTTPS traffic",
        when: "the URL is http://",
        remedy: "Use an https:// URL; terminate TLS on Bitbucket or on a proxy in front of it." }
    DnsResolutionFailed { check: Some(Reachable), effect: RETRY, source: "seed 000: server not accessible",
        when: "the host name does not resolve",
        remedy: "Check the spelling of {host} and that it has a DNS record visible from where bbconn runs." }
    ConnectionRefused { check: Some(Reachable), effect: RETRY, source: "seed 000: server not accessible",
        when: "the TCP connection is refused",
        remedy: "Nothing accepts connections on {host}:{port}: start Bitbucket, fix the port in spec.url, or open the firewall." }
    ConnectionTimedOut { check: None, effect: Effect::Transient, source: "seed 000: server not accessible",
        when: "the TCP connection or the server's answer times out",
        remedy: "Check the route and firewalls between bbconn and {host}:{port}; bbconn retries with backoff." }
    UnexpectedRedirect { check: None, effect: FAIL, source: "bbconn: credentials are never sent across a redirect to another host",
        when: "the server redirects to another host, scheme or port",
        remedy: "Set spec.url to the address Bitbucket redirects to (the message names it)." }
    CaBundleNotFound { check: Some(TlsVerified), effect: FAIL, source: "seed 000: private server certificate",
        when: "the ConfigMap or Secret named in spec.tls.caBundleRef, or its key, does not exist",
        remedy: "Create the CA bundle named in spec.tls.caBundleRef (key ca.crt unless set), or fix its name." }
    CaBundleInvalid { check: Some(TlsVerified), effect: FAIL, source: "bbconn",
        when: "the CA bundle holds no usable PEM certificate",
        remedy: "Put the PEM-encoded CA certificates (-----BEGIN CERTIFICATE-----) under the referenced key." }
    CertificateUntrusted { check: Some(TlsVerified), effect: FAIL, source: "seed 000: private server certificate",
        when: "the chain does not end at a trusted root (private CA not supplied)",
        remedy: "Supply the CA that issued {host}'s certificate in spec.tls.caBundleRef (a ConfigMap or Secret)." }
    CertificateHostnameMismatch { check: Some(TlsVerified), effect: FAIL, source: "bbconn",
        when: "the certificate does not name the host",
        remedy: "Re-issue the server certificate with {host} among its subject alternative names, or use in spec.url a name the certificate has." }
    CertificateExpired { check: Some(TlsVerified), effect: FAIL, source: "bbconn",
        when: "the certificate's validity ended",
        remedy: "Renew the certificate of {host}." }
    CertificateNotYetValid { check: Some(TlsVerified), effect: FAIL, source: "bbconn",
        when: "the certificate's validity has not begun",
        remedy: "Check the clocks of {host} and of bbconn, or install a certificate that is valid now." }
    CertificatePinMismatch { check: Some(TlsVerified), effect: FAIL, source: "seed 000: the certificate must match the certificate on the Bitbucket server",
        when: "the server's leaf certificate is not the one pinned",
        remedy: "If the certificate was renewed on purpose, set spec.tls.pinnedSha256 to status.certificate.sha256; otherwise find out who answers for {host}." }
    CertificateExpiringSoon { check: Some(TlsVerified), effect: Effect::Warn, source: "bbconn",
        when: "the certificate expires within spec.expiryWarning",
        remedy: "Renew the certificate of {host} before status.certificate.notAfter." }
    TlsVerificationSkipped { check: Some(TlsVerified), effect: Effect::Warn, source: "Argo CD: a repository Secret's insecure: \"true\" skips certificate verification (docs/operator-manual/argocd-repositories.yaml)",
        when: "spec.tls.insecureSkipVerify: the consumer accepts any certificate; the message says whether this one would verify",
        remedy: "Give the consumer the CA that signed the certificate of {host} (Argo CD: argocd-tls-certs-cm; bbconn: spec.tls.caBundleRef), then remove insecure from the consumer's Secret (and spec.tls.insecureSkipVerify): until then anyone on the path can pose as {host} and read the credential." }
    TokenRevoked { check: Some(Authenticated), effect: FAIL, source: "seed 000: the access token was revoked",
        when: "401 for a credential of the right form",
        remedy: "Re-create the access token, with the scopes listed in requirements, and update Secret {secret}." }
    TokenExpired { check: Some(Authenticated), effect: FAIL, source: "seed 004: the token passed its expiration date",
        when: "the server or the token's own data says it has expired",
        remedy: "Create a new token, with the permissions listed in requirements and an expiry that suits your rotation, and update Secret {secret}." }
    CredentialsRejected { check: Some(Authenticated), effect: FAIL, source: "seed 004: user name and password",
        when: "401 for a user name and password",
        remedy: "Check the user name and password in Secret {secret} (and that the account is not locked), or switch to an access token." }
    AppPasswordRetired { check: Some(Authenticated), effect: FAIL, source: "Atlassian: app passwords removed for good on 2026-07-28",
        when: "method AppPassword: Bitbucket Cloud no longer accepts app passwords (bbconn does not send them)",
        remedy: "Create an API token with scopes, set spec.auth.method: ApiToken, and store your Atlassian account email (username) and the token (token) in Secret {secret}." }
    OAuthClientRejected { check: Some(Authenticated), effect: FAIL, source: "seeds 002 and 003: mismatched credentials",
        when: "the token endpoint rejects the client id or secret",
        remedy: "Copy the client id (key) and secret from Bitbucket into Secret {secret} again; for the client-credentials grant the Cloud consumer must be private." }
    OAuthRedirectMismatch { check: Some(Authenticated), effect: FAIL, source: "seed 003: double-check clientId, clientSecret, and redirect URL",
        when: "the redirect URL is not the one registered for the client",
        remedy: "Make redirectUrl in Secret {secret} equal the redirect URL registered for the client in Bitbucket." }
    BasicAuthDisabled { check: Some(Authenticated), effect: FAIL, source: "seed 004: user name and password; Bitbucket 10 disables Basic authentication by default",
        when: "the server refuses Basic authentication altogether (Data Center 10's default: 403 \"Basic Authentication has been disabled\")",
        remedy: "Create an HTTP access token (personal, project or repository) with the permissions listed in requirements, set spec.auth.method: AccessToken and store it under key token in Secret {secret}. Nothing is wrong with the password: the server no longer accepts any." }
    CaptchaRequired { check: Some(Authenticated), effect: FAIL, source: "bbconn: Data Center locks a user behind a CAPTCHA after failed logins",
        when: "Data Center demands a CAPTCHA for this user (too many failed logins); bbconn stops sending the credential",
        remedy: "Sign in once as this user through Bitbucket's web page and solve the CAPTCHA (or have an administrator clear it), then fix the password in Secret {secret}; bbconn sends it again only when the Secret changes or bbconn.dev/requested-at is set." }
    TokenExpiringSoon { check: Some(Authenticated), effect: Effect::Warn, source: "seeds 001 and 004: token expiry",
        when: "the token expires within spec.expiryWarning",
        remedy: "Create a replacement token before status.credential.expiresAt and update Secret {secret}." }
    BasicAuthDiscouraged { check: Some(Authenticated), effect: Effect::Warn, source: "seed 004: user name and password is discouraged",
        when: "method Basic",
        remedy: "Use an HTTP access token (method AccessToken): it can be revoked alone and limited to what this integration needs." }
    InsufficientScopes { check: Some(ScopesSufficient), effect: FAIL, source: "seeds 000, 001, 002, 004: scopes or permissions changed or insufficient",
        when: "required scopes or permissions are missing; the message lists each one",
        remedy: "Re-create the token with the missing scopes or permissions named in the message, and update Secret {secret}." }
    ExcessScopes { check: Some(ScopesSufficient), effect: Effect::Warn, source: "bbconn: least privilege",
        when: "the credential holds more than required",
        remedy: "Re-create the token with only the scopes listed in requirements: every extra scope widens what a leaked token can do." }
    ScopesUnverifiable { check: Some(ScopesSufficient), effect: Effect::Unverifiable, source: "bbconn: never assume a scope",
        when: "Bitbucket reveals no way to read the credential's scopes without side effects (e.g. an application link)",
        remedy: "Confirm the permissions in Bitbucket's settings for this client (application link or OAuth consumer): bbconn cannot read them without a person's consent." }
    RepositoriesUnverifiable { check: Some(RepositoryAccess), effect: Effect::Unverifiable, source: "bbconn: never assume an access",
        when: "repositories are listed, but the method has no token until a person grants access (an application link), so their access cannot be read",
        remedy: "Confirm in Bitbucket that the application link's user can reach the listed repositories: bbconn cannot read it without a person's consent." }
    RepositoryNotFound { check: Some(RepositoryAccess), effect: FAIL, source: "seed 000: repository permissions",
        when: "a listed repository does not exist or is invisible to the credential",
        remedy: "Check the repository name (Data Center PROJECT/slug, Cloud workspace/slug) and that the credential's user can see it." }
    InsufficientRepositoryPermission { check: Some(RepositoryAccess), effect: FAIL, source: "seed 000: admin or owner; seed 004: repository write",
        when: "the access is below what is required",
        remedy: "Grant the credential's user the access named in the message on the repository (or its project), or lower spec.requirements." }
    GitAuthRejected { check: Some(GitAccess), effect: FAIL, source: "Atlassian: using API tokens and access tokens with git; Argo CD #9667, Flux pkg #442",
        when: "REST accepts the credential but git does not (a username form git refuses for this kind of token, git over HTTPS disabled)",
        remedy: "Configure the consumer with the git credential form the message names (status.git.username): Cloud API token: username x-bitbucket-api-token-auth (or your Bitbucket username, never the email); Cloud access token or OAuth: username x-token-auth; Data Center personal token: the token owner's user name; Data Center project or repository token: no username, Authorization: Bearer. Then set spec.git.username to what the consumer sends (or remove it); with spec.auth.secretRef.format, correct the username (or use bearerToken) in the consumer's own Secret." }
    GitIpNotAllowlisted { check: Some(GitAccess), effect: FAIL, source: "Atlassian KB: Error 403 when performing Git operations (IP allowlisting)",
        when: "Bitbucket refuses git from this address: the workspace's IP allowlist does not hold it",
        remedy: "Ask a workspace admin to add the consumer's egress address to the workspace's IP allowlist (Workspace settings > IP allowlisting); bbconn checks from its own address, so allow that too." }
    GitTwoStepRequired { check: Some(GitAccess), effect: FAIL, source: "Atlassian KB: Error 403 when performing Git operations (two-step verification)",
        when: "the workspace requires two-step verification, and the credential's user has not enabled it",
        remedy: "Enable two-step verification on the account the credential belongs to, or use a repository, project or workspace access token (username x-token-auth), which two-step verification does not apply to." }
    GitPushDenied { check: Some(GitAccess), effect: FAIL, source: "seed 004: repository write; Atlassian KB: Git push returns error code 403",
        when: "spec.git.access is Write, and Bitbucket refuses the git-receive-pack advertisement (no push permission)",
        remedy: "Give the credential write access for git (Cloud: scope write:repository:bitbucket or repository:write; Data Center: REPO_WRITE, and write permission on the repository), or set spec.git.access: Read if the consumer only clones." }
    GitUnverifiable { check: Some(GitAccess), effect: Effect::Unverifiable, source: "bbconn: never assume git works",
        when: "the method cannot do git without a person (an application link has no token until someone grants access)",
        remedy: "Clone a listed repository once through the consumer after a person has granted it access: bbconn cannot test git for an application link." }
    CloneUrlMismatch { check: Some(GitAccess), effect: Effect::Warn, source: "bbconn: a server behind a reverse proxy advertises another base URL",
        when: "the clone URL Bitbucket advertises differs from spec.url in scheme, host, port or context path",
        remedy: "Set Bitbucket's base URL (Administration > Server settings) to the address consumers use, or point the consumer at the clone URL the message names; bbconn checked git at spec.url." }
    HostKeyUnknown { check: Some(HostKeyVerified), effect: FAIL, source: "OpenSSH sshd(8) SSH_KNOWN_HOSTS_FILE_FORMAT; Bitbucket Cloud's move of SSH to ssh.bitbucket.org",
        when: "known_hosts has no line for this host and port (the usual case after Cloud's move from bitbucket.org to ssh.bitbucket.org, and for [host]:port written without brackets)",
        remedy: "Add the server's host keys to the consumer's known_hosts under the name the consumer connects to ({host}; off port 22 written [{host}]:{port}); status.git.ssh.knownHosts lists the lines to paste (compare their fingerprints with the ones Bitbucket publishes before trusting them)." }
    HostKeyMismatch { check: Some(HostKeyVerified), effect: FAIL, source: "bitbucket.org/blog/ssh-host-key-changes (2023 rotation); argoproj/argo-cd#13604; OpenSSH: REMOTE HOST IDENTIFICATION HAS CHANGED",
        when: "known_hosts lists a key type for the host that the server holds with another key, or lists the server's key as @revoked",
        remedy: "Replace the consumer's known_hosts lines for {host} with the server's current keys (status.git.ssh.knownHosts; compare the fingerprints with the ones Bitbucket publishes). If the key changed without notice, find out why before trusting it." }
    SshKeyRejected { check: Some(Authenticated), effect: FAIL, source: "RFC 4252 section 7; argoproj/argo-cd#9122 (user name other than git)",
        when: "transport SSH: the server refuses the public key (not registered, another user name than git, a key type or signature it refuses); learned from the offer without a signature where the server answers one",
        remedy: "Register the public key (status.git.ssh.publicKeyFingerprint names it) on Bitbucket: as an access key on the repository (read-only on Cloud), or on a user with access; connect as user git (ssh://git@{host}). Then update Secret {secret} if the key changed: bbconn offers a refused key again only when the Secret, the spec or bbconn.dev/requested-at changes." }
    HostKeyTypesIncomplete { check: Some(HostKeyVerified), effect: Effect::Warn, source: "argoproj/argo-helm#2059, argoproj/argo-cd#13749, fluxcd/flux2#5385: knownhosts: key mismatch",
        when: "the server holds host key types that known_hosts lacks for it: Go clients (Argo CD, Flux) that negotiate the newest type fail with knownhosts: key mismatch",
        remedy: "Add a known_hosts line for every host key type the server holds (status.git.ssh.knownHosts lists them all), not only the one your client negotiated." }
    HostKeyCheckSkipped { check: Some(HostKeyVerified), effect: Effect::Warn, source: "Argo CD: a repository Secret's insecure: \"true\" skips the host key check (docs/operator-manual/argocd-repositories.yaml)",
        when: "spec.git.ssh.insecureIgnoreHostKey: the consumer accepts any host key; the message says whether known_hosts would verify this server",
        remedy: "Add the host keys of {host} to the consumer's known_hosts (Argo CD: argocd-ssh-known-hosts-cm; status.git.ssh.knownHosts lists the server's), then remove insecure from the consumer's Secret (and spec.git.ssh.insecureIgnoreHostKey): until then anyone on the path can pose as {host}." }
    SshHostMoved { check: Some(GitAccess), effect: Effect::Warn, source: "Atlassian: Upcoming change to Bitbucket Cloud SSH access: move from bitbucket.org to ssh.bitbucket.org (bitbucket.org serves HTTPS only from 2026-11-12)",
        when: "an SSH URL on bitbucket.org, which Bitbucket Cloud serves HTTPS only since 2026-11-12 (where bitbucket.org no longer answers SSH, the network cause stands instead, with this remedy)",
        remedy: "Change the consumer's URL to ssh://git@ssh.bitbucket.org/<workspace>/<repo>.git (Flux spec.url, Argo CD repository url) and add ssh.bitbucket.org's host keys to its known_hosts; where port 22 is blocked, use ssh://git@altssh.bitbucket.org:443/<workspace>/<repo>.git with known_hosts lines for [altssh.bitbucket.org]:443." }
    ServerError { check: None, effect: Effect::Transient, source: "bbconn",
        when: "Bitbucket answered 5xx",
        remedy: "Bitbucket failed to answer; bbconn retries with backoff. If it lasts, check the server's health." }
    RateLimited { check: None, effect: Effect::Transient, source: "Atlassian: API request limits",
        when: "Bitbucket answered 429 (Cloud sends no Retry-After)",
        remedy: "Bitbucket is rate-limiting this credential; bbconn waits for Retry-After, or without one backs off on its own (from one minute, doubling to an hour). Reduce other traffic on it, or lengthen spec.interval." }
    NotBitbucketApi { check: None, effect: FAIL, source: "bbconn: real Bitbucket answers to a wrong base URL (403 Forbidden without /2.0, 404 no API, a redirect to the login page)",
        when: "spec.url answers, but not as Bitbucket's REST API (wrong path or context path): a URL problem, not a credential one",
        remedy: "Set spec.url to Bitbucket's REST base: Cloud https://api.bitbucket.org/2.0; Data Center the server's base URL with its context path (the part before /rest), as its clone URLs show it." }
    UnexpectedResponse { check: None, effect: Effect::Transient, source: "bbconn",
        when: "the answer is not what Bitbucket's API gives (wrong content, oversized body)",
        remedy: "Check that spec.url points at Bitbucket's REST API (Cloud: https://api.bitbucket.org/2.0; Data Center: the server's base URL with its context path)." }
}

/// Values for a remedy's placeholders.
#[derive(Clone, Debug, Default)]
pub struct RemedyContext {
    pub secret: String,
    pub host: String,
    pub port: String,
    pub proxy: String,
}

impl Cause {
    pub fn entry(self) -> &'static Entry {
        // The table is generated from the same list as the enum, in the same order.
        &CAUSES[self as usize]
    }
    pub fn effect(self) -> Effect {
        self.entry().effect
    }
    pub fn severity(self) -> Severity {
        match self.effect() {
            Effect::Warn | Effect::Unverifiable => Severity::Warning,
            Effect::Fail { .. } | Effect::Transient => Severity::Error,
        }
    }
    pub fn stalls(self) -> bool {
        matches!(self.effect(), Effect::Fail { stalls: true })
    }
    pub fn is_transient(self) -> bool {
        self.effect() == Effect::Transient
    }
    /// Bitbucket looked at the credential and refused it: sending it again cannot succeed and
    /// counts as another failed login (Data Center locks the user behind a CAPTCHA after a
    /// few), so it is withheld until the Secret, the spec or bbconn.dev/requested-at changes.
    pub fn withholds_credential(self) -> bool {
        matches!(
            self,
            Cause::TokenRevoked
                | Cause::TokenExpired
                | Cause::CredentialsRejected
                | Cause::CaptchaRequired
                | Cause::BasicAuthDisabled
                | Cause::OAuthClientRejected
                | Cause::OAuthRedirectMismatch
                | Cause::GitAuthRejected
                | Cause::SshKeyRejected
        )
    }
    pub fn remedy(self, ctx: &RemedyContext) -> String {
        self.entry()
            .remedy
            .replace("{secret}", &ctx.secret)
            .replace("{host}", &ctx.host)
            .replace("{port}", &ctx.port)
            .replace("{proxy}", &ctx.proxy)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Condition types that are not checks.
pub mod condition {
    pub const READY: &str = "Ready";
    pub const STALLED: &str = "Stalled";
    pub const RECONCILING: &str = "Reconciling";
}

/// A condition's type, status or reason as bbconn writes it, in two bytes: the operator's cache
/// holds tens of thousands of conditions, and these names are all it needs of most of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Name(u16);

impl Name {
    /// The names that are neither a check nor a cause.
    const FIXED: [&'static str; 11] = [
        "True",
        "False",
        "Unknown",
        condition::READY,
        condition::RECONCILING,
        condition::STALLED,
        reason::PASSED,
        reason::ALL_PASSED,
        reason::NOTHING_REQUIRED,
        reason::NOT_CHECKED,
        reason::CHECKING,
    ];

    /// `None` for a name bbconn does not write (a status someone else wrote).
    pub fn of(s: &str) -> Option<Name> {
        let fixed = Self::FIXED.len();
        let checks = Check::ALL.len();
        let i = if let Some(i) = Self::FIXED.iter().position(|f| *f == s) {
            i
        } else if let Some(i) = Check::ALL.iter().position(|c| c.as_str() == s) {
            fixed + i
        } else {
            // A cause's discriminant is its row in CAUSES (tests::table_and_enum_agree).
            fixed + checks + Cause::parse(s)? as usize
        };
        u16::try_from(i).ok().map(Name)
    }

    pub fn as_str(self) -> &'static str {
        let i = usize::from(self.0);
        let (fixed, checks) = (Self::FIXED.len(), Check::ALL.len());
        if i < fixed {
            Self::FIXED[i]
        } else if i < fixed + checks {
            Check::ALL[i - fixed].as_str()
        } else {
            // Only `of` makes a Name, from an index it found in one of the three lists.
            CAUSES
                .get(i - fixed - checks)
                .map_or("", |e| e.cause.as_str())
        }
    }
}

/// Reasons of conditions that are not causes.
pub mod reason {
    pub const PASSED: &str = "Passed";
    pub const ALL_PASSED: &str = "AllChecksPassed";
    pub const NOTHING_REQUIRED: &str = "NothingRequired";
    pub const NOT_CHECKED: &str = "NotChecked";
    pub const CHECKING: &str = "Checking";
}

/// docs/causes.md, generated from the catalogue (and drift-checked by a test).
pub fn reference_markdown() -> String {
    let mut out = String::from(
        "# Causes and remedies\n\nGenerated from `src/catalogue.rs` by `bbconn causes`; do not edit by hand.\n\n",
    );
    out.push_str("## Conditions\n\n| type | True means |\n|---|---|\n");
    out.push_str(
        "| `Ready` | every check passed; otherwise its reason is the first failing cause |\n",
    );
    for c in Check::ALL {
        out.push_str(&format!("| `{}` | {} |\n", c.as_str(), c.meaning()));
    }
    out.push_str("\n## Causes\n\nEffect: **False** (the condition is False; *stalls*: retrying will not help until the spec, the Secret or the server changes, so `Stalled=True`), **Unknown** (transient: retried with backoff, `Ready` becomes Unknown, not False), **Warning** (the condition stays True).\n\n");
    out.push_str(
        "| check | cause | effect | when | remedy | source |\n|---|---|---|---|---|---|\n",
    );
    for e in CAUSES {
        let effect = match e.effect {
            Effect::Fail { stalls: true } => "False, stalls",
            Effect::Fail { stalls: false } => "False, retried",
            Effect::Transient => "Unknown, retried",
            Effect::Warn => "Warning",
            Effect::Unverifiable => "Unknown, Warning",
        };
        let check = e.check.map_or("any", Check::as_str);
        out.push_str(&format!(
            "| {} | `{}` | {} | {} | {} | {} |\n",
            check,
            e.cause.as_str(),
            effect,
            e.when,
            e.remedy,
            e.source
        ));
    }
    out.push_str("\n## What consumers show\n\nThe error a consumer shows a person when it meets the cause, as seen in the source named. Argo CD and Flux (go-git) fold every 401 into `authentication required`, every 403 into `authorization failed` and every 404 into `repository not found`, so one of their texts can stand for several causes: bbconn's condition says which.\n\n| cause | consumer | what it shows | seen in |\n|---|---|---|---|\n");
    for t in CONSUMER_TEXTS {
        out.push_str(&format!(
            "| `{}` | {} | `{}` | {} |\n",
            t.cause.as_str(),
            t.consumer,
            t.text
                .replace('|', "\\|")
                .replace('`', "'")
                .replace('\n', " "),
            t.source.replace('|', "\\|").replace('\n', " ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_bbconn_writes_fits_in_a_name_and_no_other_does() {
        let all = Name::FIXED
            .iter()
            .copied()
            .chain(Check::ALL.iter().map(|c| c.as_str()))
            .chain(CAUSES.iter().map(|e| e.cause.as_str()));
        for s in all {
            assert_eq!(Name::of(s).map(Name::as_str), Some(s));
        }
        assert_eq!(Name::of("SomethingElse"), None);
        assert_eq!(Name::of(""), None);
    }

    #[test]
    fn table_and_enum_agree() {
        for (i, e) in CAUSES.iter().enumerate() {
            assert_eq!(e.cause as usize, i);
            assert_eq!(Cause::parse(e.cause.as_str()), Some(e.cause));
        }
    }

    #[test]
    fn transient_causes_never_stall() {
        for name in ["ServerError", "RateLimited", "ConnectionTimedOut"] {
            let c = Cause::parse(name).unwrap();
            assert!(c.is_transient() && !c.stalls(), "{name}");
        }
        assert!(Cause::TokenRevoked.stalls());
    }
}
