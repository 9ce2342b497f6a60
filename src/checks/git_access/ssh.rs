//! GitAccess over SSH, and what Bitbucket's SSH answers mean for RepositoryAccess and
//! Authenticated: the text its servers write on the exec channel's stderr before git prints
//! `fatal: Could not read from remote repository.` (docs/design/bitbucket-api.md, "Git over
//! SSH"), the advertisement itself, and where the consumer connects.

use crate::api::{Flavor, GitAccessLevel};
use crate::bitbucket::git::{Advertisement, Service};
use crate::catalogue::{Cause, Check};
use crate::checks::{CheckResult, Finding};
use crate::scrub::excerpt;

/// Cloud's SSH host since 2026-11-12 (bitbucket.org serves HTTPS only), and its port-443 twin.
pub const CLOUD_SSH_HOST: &str = "ssh.bitbucket.org";
pub const CLOUD_ALT_SSH: &str = "altssh.bitbucket.org";
pub const CLOUD_OLD_HOST: &str = "bitbucket.org";

/// How much of the server's text a message quotes.
const QUOTED: usize = 200;

/// What an exec channel answered, as the checks read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExecAnswer {
    Advertised(Advertisement),
    /// No advertisement: the server's text (stderr), and the exit status.
    Refused {
        text: String,
        exit: Option<u32>,
    },
    /// Something that is not git on stdout.
    NotGit(String),
}

/// The verdict one exec answer decides, if it is a refusal: the check and its finding.
pub fn judge(
    flavor: Flavor,
    service: Service,
    answer: &ExecAnswer,
    repo: &str,
) -> Option<(Check, Finding)> {
    let (text, exit) = match answer {
        ExecAnswer::Advertised(_) => return None,
        ExecAnswer::NotGit(detail) => {
            return Some((
                Check::GitAccess,
                Finding::new(
                    Cause::UnexpectedResponse,
                    format!(
                        "{} for {repo} over SSH did not answer as git: {detail}",
                        service.name()
                    ),
                ),
            ));
        }
        ExecAnswer::Refused { text, exit } => (text.as_str(), *exit),
    };
    let said = if text.is_empty() {
        format!(
            "no text (exit status {})",
            exit.map_or("none".into(), |e| e.to_string())
        )
    } else {
        format!("{:?}", excerpt(text, QUOTED))
    };
    let lower = text.to_ascii_lowercase();
    let push = service == Service::ReceivePack;
    let found = |check, cause, what: &str| {
        Some((
            check,
            Finding::new(
                cause,
                format!(
                    "{what}: Bitbucket answered {} for {repo} with {said}",
                    service.name()
                ),
            ),
        ))
    };
    if lower.contains("deployment key is read-only") || lower.contains("read-only") && push {
        return found(
            Check::GitAccess,
            Cause::GitPushDenied,
            "the key may read but not push (an access key is read-only)",
        );
    }
    if lower.contains("repository does not exist")
        || lower.contains("repository not found")
        || lower.contains("requested repository does not exist")
    {
        return found(
            Check::RepositoryAccess,
            Cause::RepositoryNotFound,
            "the repository does not exist or is invisible to this key",
        );
    }
    if lower.contains("access denied")
        || lower.contains("not permitted")
        || lower.contains("permission")
    {
        if push {
            return found(
                Check::GitAccess,
                Cause::GitPushDenied,
                "the key may not push",
            );
        }
        return found(
            Check::RepositoryAccess,
            Cause::InsufficientRepositoryPermission,
            "the key has no access to the repository",
        );
    }
    if lower.contains("whitelist") || lower.contains("allowlist") {
        return found(
            Check::GitAccess,
            Cause::GitIpNotAllowlisted,
            "Bitbucket refuses git from this address",
        );
    }
    let _ = flavor;
    found(
        Check::GitAccess,
        if push {
            Cause::GitPushDenied
        } else {
            Cause::UnexpectedResponse
        },
        "git over SSH was refused",
    )
}

/// GitAccess when every listed repository advertised: what was proven.
pub fn passed(access: GitAccessLevel, url: &str, repos: usize) -> CheckResult {
    let what = match access {
        GitAccessLevel::Read => "git-upload-pack",
        GitAccessLevel::Write => "git-upload-pack and git-receive-pack",
    };
    CheckResult::passed(
        Check::GitAccess,
        format!(
            "{what} advertised refs over SSH at {url} for {repos} listed repositories, with the consumer's key"
        ),
    )
}

/// RepositoryAccess over SSH alone: every listed repository answered git-upload-pack.
pub fn repositories_passed(repos: usize) -> CheckResult {
    CheckResult::passed(
        Check::RepositoryAccess,
        format!(
            "{repos} listed repositories answered git-upload-pack over SSH for the consumer's key"
        ),
    )
}

/// The key was refused: learned from the offer without a signature where the server answers it.
pub fn key_rejected(user: &str, host: &str, fingerprint: &str) -> Finding {
    let how = "refused the key (offered without a signature first)";
    let user_hint = if user == "git" {
        String::new()
    } else {
        format!("; the user name is {user:?}, and Bitbucket knows keys only for user git")
    };
    Finding::new(
        Cause::SshKeyRejected,
        format!(
            "{host} {how}: public key {fingerprint} for user {user:?} is not registered there{user_hint} (the consumer sees Permission denied (publickey))"
        ),
    )
}

pub fn key_accepted(user: &str, host: &str, fingerprint: &str) -> CheckResult {
    CheckResult::passed(
        Check::Authenticated,
        format!("{host} accepts public key {fingerprint} for user {user}"),
    )
}

/// Warning SshHostMoved: an SSH URL on bitbucket.org.
pub fn host_moved(host: &str, port: u16) -> Option<Finding> {
    host.eq_ignore_ascii_case(CLOUD_OLD_HOST).then(|| {
        Finding::new(
            Cause::SshHostMoved,
            format!("the SSH URL names {host}:{port}; Bitbucket Cloud serves SSH at {CLOUD_SSH_HOST} (and {CLOUD_ALT_SSH}:443) since 2026-11-12, and bitbucket.org HTTPS only"),
        )
    })
}

/// A network failure on Cloud's old SSH host, or on port 22 of Cloud: the remedy names where
/// SSH is served now.
pub fn network_hint(f: Finding, host: &str, port: u16) -> Finding {
    let mut f = moved_hint(f, host);
    if host.eq_ignore_ascii_case(CLOUD_SSH_HOST) && port == 22 {
        f.message = format!(
            "{}; where port 22 is blocked, Bitbucket Cloud serves SSH on port 443 at {CLOUD_ALT_SSH} (ssh://git@{CLOUD_ALT_SSH}:443/<workspace>/<repo>.git, known_hosts [{CLOUD_ALT_SSH}]:443)",
            f.message
        );
    }
    f
}

/// Any failure on bitbucket.org says where Cloud serves SSH now.
pub fn moved_hint(mut f: Finding, host: &str) -> Finding {
    if host.eq_ignore_ascii_case(CLOUD_OLD_HOST) {
        f.message = format!(
            "{}; Bitbucket Cloud no longer serves SSH at bitbucket.org: use ssh://git@{CLOUD_SSH_HOST}/<workspace>/<repo>.git",
            f.message
        );
    }
    f
}

/// The port answered, but not as an SSH server (an HTTP server on it, a proxy's page).
pub fn not_ssh(host: &str, port: u16, detail: &str) -> Finding {
    Finding::new(
        Cause::UnexpectedResponse,
        format!("{host}:{port} is not an SSH server: {detail}"),
    )
}

/// No SSH greeting within the request timeout.
pub fn no_answer(host: &str, port: u16, timeout: std::time::Duration) -> Finding {
    Finding::new(
        Cause::ConnectionTimedOut,
        format!(
            "{host}:{port} accepted the connection but sent no SSH greeting within {timeout:?}"
        ),
    )
}

pub fn handshake_failed(host: &str, port: u16, detail: &str) -> Finding {
    Finding::new(
        Cause::UnexpectedResponse,
        format!(
            "the SSH key exchange with {host}:{port} failed: {}",
            excerpt(detail, QUOTED)
        ),
    )
}

/// The consumer's host key type verified, but its handshake ended before the session opened.
pub fn session_lost(host: &str, port: u16) -> Finding {
    Finding::new(
        Cause::UnexpectedResponse,
        format!(
            "{host}:{port} closed the SSH connection right after the key exchange, before authentication"
        ),
    )
}

pub fn session_failed(host: &str, port: u16, detail: &str) -> Finding {
    Finding::new(
        Cause::ServerError,
        format!(
            "the SSH session with {host}:{port} failed: {}",
            excerpt(detail, QUOTED)
        ),
    )
}

/// The exec command a consumer runs for `path`, quoted as git quotes it.
pub fn command(service: Service, path: &str) -> String {
    format!("{} '{}'", service.name(), path.replace('\'', "'\\''"))
}

/// Where the consumer connects and the repository paths, from an SSH URL in either of git's
/// forms: `ssh://user@host[:port]/path` or scp-like `user@host:path`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshUrl {
    pub user: String,
    pub host: String,
    pub port: u16,
    /// The path after the host, without the leading `/` of the ssh:// form kept apart.
    pub path: String,
}

impl SshUrl {
    pub fn parse(raw: &str) -> Result<SshUrl, Finding> {
        let bad = |why: &str| {
            Finding::new(
                Cause::InvalidSpec,
                format!("{:?} is not an SSH URL: {why}", excerpt(raw, 120)),
            )
        };
        if let Some(rest) = raw.strip_prefix("ssh://") {
            let u = url::Url::parse(&format!("ssh://{rest}")).map_err(|e| bad(&e.to_string()))?;
            let host = u
                .host_str()
                .filter(|h| !h.is_empty())
                .ok_or_else(|| bad("no host"))?;
            let host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            let user = if u.username().is_empty() {
                "git".to_string()
            } else {
                u.username().to_string()
            };
            return Ok(SshUrl {
                user,
                host,
                port: u.port().unwrap_or(22),
                path: u.path().trim_start_matches('/').to_string(),
            });
        }
        if raw.contains("://") {
            return Err(bad("use ssh:// or user@host:path"));
        }
        let (userhost, path) = raw
            .split_once(':')
            .ok_or_else(|| bad("no ':' after the host"))?;
        let (user, host) = match userhost.split_once('@') {
            Some((u, h)) => (u.to_string(), h.to_string()),
            None => ("git".to_string(), userhost.to_string()),
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        Ok(SshUrl {
            user,
            host,
            port: 22,
            path: path.trim_start_matches('/').to_string(),
        })
    }

    /// `ssh://user@host:port`, as status shows it.
    pub fn origin(&self) -> String {
        format!("ssh://{}@{}:{}", self.user, self.host, self.port)
    }
}

/// The path a repository is served at: Cloud `workspace/slug.git`; Data Center
/// `project/slug.git` (lower case, as its clone URLs write it; `~user` kept).
pub fn repo_path(flavor: Flavor, prefix: &str, name: &str) -> String {
    let name = match flavor {
        Flavor::Cloud => name.to_string(),
        Flavor::DataCenter => match name.split_once('/') {
            Some((p, s)) if !p.starts_with('~') => format!("{}/{s}", p.to_ascii_lowercase()),
            _ => name.to_string(),
        },
    };
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        format!("{name}.git")
    } else {
        format!("{prefix}/{name}.git")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_url_forms_parse() {
        let s = SshUrl::parse("ssh://git@bitbucket.example.com:7999/proj/app.git").unwrap();
        assert_eq!(
            (s.user.as_str(), s.host.as_str(), s.port, s.path.as_str()),
            ("git", "bitbucket.example.com", 7999, "proj/app.git")
        );
        let s = SshUrl::parse("git@bitbucket.org:ws/app.git").unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.path.as_str()),
            ("bitbucket.org", 22, "ws/app.git")
        );
        assert!(SshUrl::parse("https://bitbucket.org/ws/app.git").is_err());
    }

    #[test]
    fn conq_answers_map_to_causes() {
        let refused = |t: &str| ExecAnswer::Refused {
            text: t.into(),
            exit: Some(1),
        };
        let c =
            |t: &str, s| judge(Flavor::Cloud, s, &refused(t), "ws/app").map(|(c, f)| (c, f.cause));
        assert_eq!(
            c("conq: repository does not exist.", Service::UploadPack),
            Some((Check::RepositoryAccess, Cause::RepositoryNotFound))
        );
        assert_eq!(
            c("conq: repository access denied.", Service::UploadPack),
            Some((
                Check::RepositoryAccess,
                Cause::InsufficientRepositoryPermission
            ))
        );
        assert_eq!(
            c(
                "conq: repository access denied. access via a deployment key is read-only.",
                Service::ReceivePack
            ),
            Some((Check::GitAccess, Cause::GitPushDenied))
        );
        assert_eq!(
            c(
                "Repository not found\nThe requested repository does not exist, or you do not have permission to access it.",
                Service::UploadPack
            ),
            Some((Check::RepositoryAccess, Cause::RepositoryNotFound))
        );
    }

    #[test]
    fn paths_are_written_as_bitbucket_writes_them() {
        assert_eq!(
            repo_path(Flavor::DataCenter, "", "PROJ/app"),
            "proj/app.git"
        );
        assert_eq!(
            repo_path(Flavor::DataCenter, "", "~alice/app"),
            "~alice/app.git"
        );
        assert_eq!(repo_path(Flavor::Cloud, "", "ws/App"), "ws/App.git");
        assert_eq!(
            command(Service::UploadPack, "ws/a'b.git"),
            "git-upload-pack 'ws/a'\\''b.git'"
        );
    }
}
