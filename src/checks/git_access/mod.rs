//! GitAccess: git over HTTPS works for every listed repository as the consumer will use it.
//!
//! The REST API accepting a credential does not mean git does (docs/design/bitbucket-api.md, "Git over
//! HTTPS"): git wants other user names for the same tokens, Data Center project and repository
//! tokens only as Bearer, and Cloud refuses git from outside a workspace's IP allowlist or
//! without two-step verification. This module decides which form git needs, and what each
//! advertisement answer means.

pub mod ssh;

use super::{CheckResult, Finding, Verdict};
use crate::api::{AuthMethod, Flavor, GitAccessLevel};
use crate::bitbucket::git::{Advertisement, Answer, Service};
use crate::catalogue::{Cause, Check, reason};

/// Cloud's static git user name for API tokens (support.atlassian.com/bitbucket-cloud/docs/using-api-tokens).
pub const API_TOKEN_USER: &str = "x-bitbucket-api-token-auth";
/// Cloud's git user name for repository, project and workspace access tokens and OAuth access
/// tokens (support.atlassian.com/bitbucket-cloud/docs/using-access-tokens).
pub const TOKEN_USER: &str = "x-token-auth";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Basic,
    Bearer,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Basic => "Basic",
            Scheme::Bearer => "Bearer",
        }
    }
}

/// How the credential is sent to git. Never holds the secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Form {
    pub scheme: Scheme,
    /// Basic: the user name sent.
    pub username: Option<String>,
    /// The form git needs for this method, in words, to configure in the consumer.
    pub configure: String,
    /// The form git needs: its user name (None: Bearer).
    pub needed_username: Option<String>,
    /// The form is what the consumer sends (spec.git.username, or a consumer's own Secret),
    /// not the one bbconn chose.
    pub from_spec: bool,
}

/// What the consumer sends to git, where bbconn knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sends<'a> {
    /// Basic with this user name (spec.git.username, or the username of a consumer's Secret).
    Basic(&'a str),
    /// `Authorization: Bearer` (a consumer's Secret with bearerToken).
    Bearer,
}

/// What the method's credential is, as far as git is concerned.
pub struct Inputs<'a> {
    pub flavor: Flavor,
    pub method: AuthMethod,
    /// Identity's kind (e.g. personal_access_token when Data Center's token data was read).
    pub kind: Option<&'a str>,
    /// Who Bitbucket took the credential for (Data Center's X-AUSERNAME).
    pub user: Option<&'a str>,
    /// Basic's user name from the Secret.
    pub basic_user: Option<&'a str>,
    /// What the consumer sends: spec.git.username, or its own Secret's form.
    pub sends: Option<Sends<'a>>,
    /// The user name in Cloud's clone URL (`https://name@bitbucket.org/...`), a hint.
    pub clone_user: Option<&'a str>,
}

/// The form git needs for this method, or None where no git credential can be had (an
/// application link without a person's consent; app passwords are never sent).
pub fn form(i: &Inputs<'_>) -> Option<Form> {
    let basic = |user: String, configure: String| (Scheme::Basic, Some(user), configure);
    let (scheme, needed, configure) = match (i.flavor, i.method) {
        (_, AuthMethod::OAuthApplicationLink | AuthMethod::AppPassword) => return None,
        (Flavor::Cloud, AuthMethod::ApiToken) => basic(
            API_TOKEN_USER.into(),
            format!(
                "username {API_TOKEN_USER}{} and the API token as the password (git refuses the account email that the REST API takes)",
                i.clone_user
                    .map(|u| format!(" (or your Bitbucket username {u})"))
                    .unwrap_or_else(|| " (or your Bitbucket username)".into())
            ),
        ),
        (Flavor::Cloud, AuthMethod::AccessToken) => basic(
            TOKEN_USER.into(),
            format!("username {TOKEN_USER} and the access token as the password"),
        ),
        (Flavor::Cloud, AuthMethod::OAuthClientCredentials) => basic(
            TOKEN_USER.into(),
            format!(
                "username {TOKEN_USER} and an access token from the consumer's client-credentials grant as the password (it expires after 2 hours)"
            ),
        ),
        (_, AuthMethod::Basic) => {
            let user = i.basic_user.unwrap_or_default().to_string();
            let c = format!("username {user} and the password");
            basic(user, c)
        }
        (Flavor::DataCenter, AuthMethod::AccessToken) => match (i.kind, i.user) {
            (Some("personal_access_token"), Some(user)) => basic(
                user.to_string(),
                format!(
                    "username {user} (the token's owner) and the token as the password, or the token as Authorization: Bearer"
                ),
            ),
            _ => (
                Scheme::Bearer,
                None,
                "no username: the token as an Authorization: Bearer header (git -c http.extraHeader=\"Authorization: Bearer <token>\"; Argo CD and Flux: bearerToken); project and repository tokens work for git only this way".into(),
            ),
        },
        (Flavor::DataCenter, AuthMethod::ApiToken | AuthMethod::OAuthClientCredentials) => {
            return None;
        }
    };
    Some(match i.sends {
        Some(Sends::Basic(u)) => Form {
            scheme: Scheme::Basic,
            username: Some(u.to_string()),
            configure,
            needed_username: needed,
            from_spec: true,
        },
        Some(Sends::Bearer) => Form {
            scheme: Scheme::Bearer,
            username: None,
            configure,
            needed_username: needed,
            from_spec: true,
        },
        None => Form {
            scheme,
            username: needed.clone(),
            configure,
            needed_username: needed,
            from_spec: false,
        },
    })
}

/// What was asked of one repository. Probing stops at the first refusal: a credential git
/// rejected is not sent again in the same run.
#[derive(Clone, Debug)]
pub struct Probe {
    pub name: String,
    /// The URL whose advertisements were requested.
    pub url: String,
    pub upload: Answer,
    pub receive: Option<Answer>,
}

fn sent(form: &Form) -> String {
    match (&form.scheme, &form.username) {
        (Scheme::Basic, Some(u)) => format!("Basic with username {u}"),
        _ => "Bearer".to_string(),
    }
}

/// The finding an answer stands for, if it is not a good advertisement.
pub fn judge(service: Service, answer: &Answer, form: &Form, name: &str) -> Option<Finding> {
    match answer {
        Answer::Advertised(_) => None,
        Answer::NotGit { status, detail } => Some(Finding::new(
            Cause::UnexpectedResponse,
            format!(
                "{name}: GET info/refs?service={} answered {status} with something that is not git: {detail}",
                service.name()
            ),
        )),
        Answer::Refused { status, message } => {
            let lower = message.to_lowercase();
            let said = if message.is_empty() {
                String::new()
            } else {
                format!(": \"{message}\"")
            };
            let cause = if lower.contains("whitelist your ip")
                || lower.contains("allowlist")
                || lower.contains("ip address")
            {
                Cause::GitIpNotAllowlisted
            } else if lower.contains("two-step") || lower.contains("two-factor") {
                Cause::GitTwoStepRequired
            } else if service == Service::ReceivePack {
                Cause::GitPushDenied
            } else {
                Cause::GitAuthRejected
            };
            let message = match cause {
                Cause::GitPushDenied => format!(
                    "{name}: Bitbucket refused the git-receive-pack advertisement ({status}{said}): this credential may clone but not push"
                ),
                Cause::GitAuthRejected => format!(
                    "{name}: git refused the credential ({}; {status}{said}) although the REST API accepts it; git needs {}",
                    sent(form),
                    form.configure
                ),
                _ => format!(
                    "{name}: Bitbucket refused {} ({status}{said})",
                    service.name()
                ),
            };
            Some(Finding::new(cause, message))
        }
    }
}

/// GitAccess's verdict from the probes, in order; `warnings` (clone URL mismatches) are kept
/// whatever the verdict.
pub fn check(
    access: GitAccessLevel,
    form: &Form,
    probes: &[Probe],
    warnings: Vec<Finding>,
) -> CheckResult {
    for p in probes {
        if let Some(f) = judge(Service::UploadPack, &p.upload, form, &p.name) {
            return CheckResult::failed(Check::GitAccess, f).with_warnings(warnings);
        }
        match &p.receive {
            Some(r) => {
                if let Some(f) = judge(Service::ReceivePack, r, form, &p.name) {
                    return CheckResult::failed(Check::GitAccess, f).with_warnings(warnings);
                }
            }
            None if access == GitAccessLevel::Write => {
                return CheckResult::failed(
                    Check::GitAccess,
                    Finding::new(
                        Cause::GitPushDenied,
                        format!("{}: git-receive-pack was not asked", p.name),
                    ),
                )
                .with_warnings(warnings);
            }
            None => {}
        }
    }
    let what = match access {
        GitAccessLevel::Read => "clone",
        GitAccessLevel::Write => "clone and push",
    };
    let repos: Vec<String> = probes
        .iter()
        .map(|p| match &p.upload {
            Answer::Advertised(Advertisement { refs, .. }) => format!("{} ({refs} refs)", p.name),
            _ => p.name.clone(),
        })
        .collect();
    CheckResult::passed(
        Check::GitAccess,
        format!("git can {what} {} with {}", repos.join(", "), sent(form)),
    )
    .with_warnings(warnings)
}

/// A clone origin other than the API's could not be reached: the network, reachability or TLS
/// failure there is GitAccess's, naming the origin.
pub fn clone_origin_failed(origin: &url::Url, mut f: Finding) -> Finding {
    f.message = format!(
        "clone URL origin {}: {}",
        origin.origin().ascii_serialization(),
        f.message
    );
    f
}

/// A clone origin that could not be reached for no reason given.
pub fn clone_origin_unreachable(origin: &url::Url) -> Finding {
    Finding::new(
        Cause::ServerError,
        format!("the clone URL origin {origin} could not be reached"),
    )
}

pub fn nothing_required() -> CheckResult {
    let mut r = CheckResult::passed(
        Check::GitAccess,
        "no repositories are listed in the requirements",
    );
    if let Verdict::Passed {
        reason: ref mut rs, ..
    } = r.verdict
    {
        *rs = reason::NOTHING_REQUIRED;
    }
    r
}

pub fn unverifiable(method: AuthMethod) -> CheckResult {
    CheckResult::failed(
        Check::GitAccess,
        Finding::new(
            Cause::GitUnverifiable,
            format!(
                "method {method:?} has no credential git can use until a person grants access, so git over HTTPS cannot be tested"
            ),
        ),
    )
}

/// The parts of a clone URL that decide where git goes.
fn context_path(flavor: Flavor, path: &str) -> String {
    // Drop the repository's own two segments ({project}/{slug}.git or {workspace}/{slug}.git)
    // and Data Center's /scm.
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let keep = segs.len().saturating_sub(2);
    let mut ctx = segs[..keep].join("/");
    if flavor == Flavor::DataCenter {
        ctx = ctx
            .strip_suffix("scm")
            .unwrap_or(&ctx)
            .trim_end_matches('/')
            .to_string();
    }
    if ctx.is_empty() {
        String::new()
    } else {
        format!("/{ctx}")
    }
}

/// Where git should live for spec.url: Data Center at the same origin and context path; Cloud at
/// the web host beside the API host (api.bitbucket.org -> bitbucket.org), at its root.
fn expected(flavor: Flavor, spec_url: &url::Url) -> (String, String, Option<u16>, String) {
    let host = spec_url.host_str().unwrap_or_default().to_ascii_lowercase();
    match flavor {
        Flavor::DataCenter => (
            spec_url.scheme().to_string(),
            host,
            spec_url.port_or_known_default(),
            spec_url.path().trim_end_matches('/').to_string(),
        ),
        Flavor::Cloud => (
            spec_url.scheme().to_string(),
            host.strip_prefix("api.").unwrap_or(&host).to_string(),
            spec_url.port_or_known_default(),
            String::new(),
        ),
    }
}

/// A Warning when the advertised clone URL leaves spec.url's scheme, host, port or context path.
pub fn clone_mismatch(
    flavor: Flavor,
    spec_url: &url::Url,
    name: &str,
    clone: &url::Url,
) -> Option<Finding> {
    let (scheme, host, port, ctx) = expected(flavor, spec_url);
    let mut differs = Vec::new();
    if clone.scheme() != scheme {
        differs.push(format!("scheme {} (not {scheme})", clone.scheme()));
    }
    let chost = clone.host_str().unwrap_or_default().to_ascii_lowercase();
    if chost != host {
        differs.push(format!("host {chost} (not {host})"));
    }
    if clone.port_or_known_default() != port {
        differs.push(format!(
            "port {} (not {})",
            clone.port_or_known_default().unwrap_or(0),
            port.unwrap_or(0)
        ));
    }
    let cctx = context_path(flavor, clone.path());
    if cctx != ctx {
        let show = |c: &str| {
            if c.is_empty() {
                "/".to_string()
            } else {
                c.to_string()
            }
        };
        differs.push(format!("context path {} (not {})", show(&cctx), show(&ctx)));
    }
    if differs.is_empty() {
        return None;
    }
    Some(Finding::new(
        Cause::CloneUrlMismatch,
        format!(
            "Bitbucket advertises {name}'s clone URL as {} ({}): a consumer that follows it may not get through",
            without_userinfo(clone),
            differs.join(", ")
        ),
    ))
}

/// The URL git is checked at: the advertised one, except that a Data Center clone URL that
/// leaves spec.url is re-based onto spec.url (the address bbconn verified, and the one a
/// consumer configured with spec.url's address uses). Without an advertised URL, the flavour's
/// layout (docs/design/bitbucket-api.md: Cloud `https://bitbucket.org/{ws}/{slug}.git`, Data Center
/// `{base}/scm/{project}/{slug}.git`).
pub fn checked_url(
    flavor: Flavor,
    spec_url: &url::Url,
    owner: &str,
    slug: &str,
    advertised: Option<&url::Url>,
) -> String {
    let (scheme, host, port, ctx) = expected(flavor, spec_url);
    let authority = match port {
        Some(p) if Some(p) != default_port(&scheme) => format!("{host}:{p}"),
        _ => host,
    };
    let derived = match flavor {
        Flavor::DataCenter => format!(
            "{scheme}://{authority}{ctx}/scm/{}/{slug}.git",
            owner.to_lowercase()
        ),
        Flavor::Cloud => format!("{scheme}://{authority}/{owner}/{slug}.git"),
    };
    match advertised {
        Some(u) if flavor == Flavor::Cloud => without_userinfo(u),
        Some(u) if clone_mismatch(flavor, spec_url, "", u).is_none() => without_userinfo(u),
        _ => derived,
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "https" => Some(443),
        "http" => Some(80),
        _ => None,
    }
}

pub fn without_userinfo(u: &url::Url) -> String {
    let mut u = u.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(flavor: Flavor, method: AuthMethod) -> Inputs<'static> {
        Inputs {
            flavor,
            method,
            kind: None,
            user: None,
            basic_user: None,
            sends: None,
            clone_user: None,
        }
    }

    #[test]
    fn the_form_git_needs_per_method() {
        let f = form(&inputs(Flavor::Cloud, AuthMethod::ApiToken)).unwrap();
        assert_eq!(f.username.as_deref(), Some(API_TOKEN_USER));
        let f = form(&inputs(Flavor::Cloud, AuthMethod::AccessToken)).unwrap();
        assert_eq!(f.username.as_deref(), Some(TOKEN_USER));
        let f = form(&inputs(Flavor::Cloud, AuthMethod::OAuthClientCredentials)).unwrap();
        assert_eq!(f.username.as_deref(), Some(TOKEN_USER));
        // Data Center: Basic with the owner only when the token is known to be personal.
        let f = form(&inputs(Flavor::DataCenter, AuthMethod::AccessToken)).unwrap();
        assert_eq!(f.scheme, Scheme::Bearer);
        let mut i = inputs(Flavor::DataCenter, AuthMethod::AccessToken);
        i.kind = Some("personal_access_token");
        i.user = Some("alice");
        let f = form(&i).unwrap();
        assert_eq!(
            (f.scheme, f.username.as_deref()),
            (Scheme::Basic, Some("alice"))
        );
        assert!(
            form(&inputs(
                Flavor::DataCenter,
                AuthMethod::OAuthApplicationLink
            ))
            .is_none()
        );
        // What the consumer sends wins, and the needed form is still named.
        let mut i = inputs(Flavor::Cloud, AuthMethod::ApiToken);
        i.sends = Some(Sends::Basic("alice@example.com"));
        let f = form(&i).unwrap();
        assert_eq!(f.username.as_deref(), Some("alice@example.com"));
        assert!(f.configure.contains(API_TOKEN_USER));
        // A consumer's Secret with bearerToken: Bearer, whatever bbconn would have chosen.
        let mut i = inputs(Flavor::Cloud, AuthMethod::AccessToken);
        i.sends = Some(Sends::Bearer);
        let f = form(&i).unwrap();
        assert_eq!((f.scheme, f.username), (Scheme::Bearer, None));
        assert_eq!(f.needed_username.as_deref(), Some(TOKEN_USER));
    }

    fn refused(status: u16, message: &str) -> Answer {
        Answer::Refused {
            status,
            message: message.into(),
        }
    }

    #[test]
    fn refusals_by_their_text() {
        let f = form(&inputs(Flavor::Cloud, AuthMethod::AccessToken)).unwrap();
        let j = |s, a: &Answer| judge(s, a, &f, "acme/app").map(|f| f.cause);
        assert_eq!(
            j(
                Service::UploadPack,
                &refused(
                    403,
                    "To access this repository, an admin must whitelist your IP."
                )
            ),
            Some(Cause::GitIpNotAllowlisted)
        );
        assert_eq!(
            j(
                Service::UploadPack,
                &refused(
                    403,
                    "To access this repository, enable two-step authentication."
                )
            ),
            Some(Cause::GitTwoStepRequired)
        );
        assert_eq!(
            j(Service::UploadPack, &refused(401, "Unauthorized")),
            Some(Cause::GitAuthRejected)
        );
        assert_eq!(
            j(
                Service::ReceivePack,
                &refused(
                    403,
                    "The requested repository either does not exist or you do not have access."
                )
            ),
            Some(Cause::GitPushDenied)
        );
        let msg = judge(Service::UploadPack, &refused(401, "x"), &f, "acme/app")
            .unwrap()
            .message;
        assert!(msg.contains("x-token-auth"), "{msg}");
    }

    #[test]
    fn clone_urls_behind_a_reverse_proxy() {
        let spec = url::Url::parse("https://bitbucket.example.com/bitbucket").unwrap();
        let same =
            url::Url::parse("https://bitbucket.example.com/bitbucket/scm/proj/app.git").unwrap();
        assert!(clone_mismatch(Flavor::DataCenter, &spec, "PROJ/app", &same).is_none());
        let other = url::Url::parse("http://bb-internal:7990/scm/proj/app.git").unwrap();
        let w = clone_mismatch(Flavor::DataCenter, &spec, "PROJ/app", &other).unwrap();
        assert_eq!(w.cause, Cause::CloneUrlMismatch);
        for part in ["host bb-internal", "port 7990", "context path /"] {
            assert!(w.message.contains(part), "{part}: {}", w.message);
        }
        // Checked at spec.url instead.
        assert_eq!(
            checked_url(Flavor::DataCenter, &spec, "PROJ", "app", Some(&other)),
            "https://bitbucket.example.com/bitbucket/scm/proj/app.git"
        );
        // Cloud's clone host is the web host beside the API host; its user name is not sent.
        let api = url::Url::parse("https://api.bitbucket.org/2.0").unwrap();
        let clone = url::Url::parse("https://amuniz@bitbucket.org/acme/app.git").unwrap();
        assert!(clone_mismatch(Flavor::Cloud, &api, "acme/app", &clone).is_none());
        assert_eq!(
            checked_url(Flavor::Cloud, &api, "acme", "app", Some(&clone)),
            "https://bitbucket.org/acme/app.git"
        );
    }
}
