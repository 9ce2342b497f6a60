//! Step 8, GitAccess: for every listed repository, the clone URL from Bitbucket's own
//! repository answer, then the advertisements git asks for first, with the credential in the
//! form git needs. Decided by `checks/git_access.rs`; this is the I/O.

use super::repositories::Clones;
use super::{Rest, Run, Step, settle};
use crate::api::{GitAccessLevel, GitInfo, GitRepository};
use crate::bitbucket::git::{Answer, Service, advertisement};
use crate::bitbucket::{Api, Identity};
use crate::catalogue::Check;
use crate::checks::git_access::{self, Form, Inputs, Probe, Scheme, Sends};
use crate::checks::spec::{Origin, origin};
use crate::checks::{CheckResult, Finding, Verdict};
use crate::credential::{Credential, GitCredential, basic, bearer};
use crate::engine::share::ProbeInput;
use crate::transport::http::Session;
use crate::withhold;

/// GitAccess over HTTPS: the form git needs, the lockout rule, then every listed repository's
/// advertisements; `found.git` gets the clone URLs and the form.
pub(super) async fn check(
    run: &mut Run<'_>,
    rest: &Rest,
    api_session: &mut Session,
    identity: &Identity,
    clones: &Clones,
) -> Step<()> {
    let (env, t) = (run.env, run.input);
    if t.req.repositories.is_empty() {
        return settle(git_access::nothing_required());
    }
    let Some((form, header)) = credential_form(t, rest, identity, clones) else {
        return settle(git_access::unverifiable(rest.method));
    };
    let targets = GitTarget::all(t, clones);
    // The lockout rule holds for git too: a form git refused is not sent again until the
    // Secret, the spec or bbconn.dev/requested-at changes.
    let git_key = t.git_credential_key(rest, &header);
    if let Some(notice) = run.withheld(withhold::Kind::Git, &git_key) {
        let repositories = targets.iter().map(GitTarget::info).collect();
        run.found.git = Some(git_info(t.req.git, &form, repositories));
        return Err(CheckResult::failed(Check::GitAccess, notice));
    }
    let probed = probe_all(run, api_session, &targets, &form, &header).await;
    let repositories = targets.iter().map(GitTarget::info).collect();
    run.found.git = Some(git_info(t.req.git, &form, repositories));
    let mut result = match probed.failed {
        Some(r) => r.with_warnings(probed.warnings),
        None => git_access::check(t.req.git, &form, &probed.probes, probed.warnings),
    };
    match result.failure().cloned() {
        Some(f) if f.cause.withholds_credential() => {
            result.verdict = Verdict::Failed(run.refused(withhold::Kind::Git, git_key, f));
        }
        Some(_) => {}
        None => env.withheld.release(&git_key),
    }
    settle(result)
}

/// The form git needs for this credential (user name, Basic or Bearer) and the header it is
/// sent in; None when the method cannot do git without a person.
fn credential_form(
    t: &ProbeInput,
    rest: &Rest,
    identity: &Identity,
    clones: &Clones,
) -> Option<(Form, http::HeaderValue)> {
    let spec = &t.spec;
    let clone_user = clones
        .values()
        .flatten()
        .find_map(|c| url::Url::parse(c).ok())
        .map(|u| u.username().to_string())
        .filter(|u| !u.is_empty());
    let basic_user = match &rest.credential {
        Credential::Basic { username, .. } => Some(username.expose()),
        _ => None,
    };
    // A consumer's own Secret says exactly what it sends; else spec.git.username may.
    let sends = match &rest.git_credential {
        Some(GitCredential::Basic { username, .. }) => Some(Sends::Basic(username.as_str())),
        Some(GitCredential::Bearer { .. }) => Some(Sends::Bearer),
        None => spec
            .git
            .as_ref()
            .and_then(|g| g.username.as_deref())
            .map(Sends::Basic),
    };
    let form = git_access::form(&Inputs {
        flavor: spec.flavor,
        method: rest.method,
        kind: identity.kind.as_deref(),
        user: identity.user.as_deref(),
        basic_user,
        sends,
        clone_user: clone_user.as_deref(),
    })?;
    let secret = match &rest.git_credential {
        Some(g) => g.secret().expose().to_string(),
        None => git_secret(&rest.credential, identity)?,
    };
    let header = match (&form.scheme, &form.username) {
        (Scheme::Basic, Some(u)) => basic(u, &secret),
        _ => bearer(&secret),
    };
    Some((form, header))
}

/// What the advertisements said, repository by repository, until one was refused.
#[derive(Default)]
struct Probed {
    probes: Vec<Probe>,
    warnings: Vec<Finding>,
    failed: Option<CheckResult>,
}

async fn probe_all(
    run: &mut Run<'_>,
    api_session: &mut Session,
    targets: &[GitTarget<'_>],
    form: &Form,
    header: &http::HeaderValue,
) -> Probed {
    let t = run.input;
    let mut out = Probed::default();
    let mut others: Vec<(String, Session)> = Vec::new();
    for target in targets {
        if let Some(a) = &target.advertised
            && let Some(w) =
                git_access::clone_mismatch(t.spec.flavor, &t.api_origin.url, target.name, a)
        {
            out.warnings.push(w);
        }
        let o = match origin(&target.checked, "the clone URL") {
            Ok(o) => o,
            Err(f) => {
                out.failed = Some(CheckResult::failed(Check::GitAccess, f));
                break;
            }
        };
        let session = if o.same(&t.api_origin) {
            &mut *api_session
        } else {
            match session_for(run, &mut others, &o).await {
                Ok(s) => s,
                Err(r) => {
                    out.failed = Some(r);
                    break;
                }
            }
        };
        let repo_path = o.url.path().to_string();
        let mut api = Api::new(session, "", Some(header.clone()));
        let probe = probe_repo(
            &mut api,
            target.name,
            &target.checked,
            &repo_path,
            t.req.git,
            form,
        )
        .await;
        run.found.collect(&api);
        match probe {
            Ok((probe, stop)) => {
                out.probes.push(probe);
                // A credential git refused is not sent again in this run.
                if stop {
                    break;
                }
            }
            Err(f) => {
                out.failed = Some(CheckResult::failed(Check::GitAccess, f));
                break;
            }
        }
    }
    out
}

/// A session to a clone origin other than the API's, opened once per run.
async fn session_for<'s>(
    run: &mut Run<'_>,
    others: &'s mut Vec<(String, Session)>,
    o: &Origin,
) -> Result<&'s mut Session, CheckResult> {
    let key = format!(
        "{}://{}:{}",
        o.url.scheme(),
        o.host.to_ascii_lowercase(),
        o.url.port_or_known_default().unwrap_or(0)
    );
    let i = match others.iter().position(|(k, _)| *k == key) {
        Some(i) => i,
        None => {
            let s = open_other(run, o).await?;
            others.push((key, s));
            others.len() - 1
        }
    };
    Ok(&mut others[i].1)
}

/// A listed repository: the clone URL Bitbucket advertised for it, and the one git is checked at.
struct GitTarget<'a> {
    name: &'a String,
    advertised: Option<url::Url>,
    checked: String,
}

impl<'a> GitTarget<'a> {
    fn all(t: &'a ProbeInput, clones: &Clones) -> Vec<GitTarget<'a>> {
        t.req
            .repositories
            .iter()
            .map(|(name, _)| {
                // RepositoryAccess has passed, so the name is OWNER/slug.
                let (owner, slug) = name.split_once('/').unwrap_or((name.as_str(), ""));
                let advertised = clones
                    .get(name)
                    .and_then(|c| c.as_deref())
                    .and_then(|c| url::Url::parse(c).ok());
                let checked = git_access::checked_url(
                    t.spec.flavor,
                    &t.api_origin.url,
                    owner,
                    slug,
                    advertised.as_ref(),
                );
                GitTarget {
                    name,
                    advertised,
                    checked,
                }
            })
            .collect()
    }

    /// What status.git shows: the advertised URL (without credentials), else the checked one.
    fn info(&self) -> GitRepository {
        GitRepository {
            name: self.name.clone(),
            clone_url: self
                .advertised
                .as_ref()
                .map(git_access::without_userinfo)
                .unwrap_or_else(|| self.checked.clone()),
        }
    }
}

/// Upload-pack, then (for Write) receive-pack; `true`: stop, git refused something.
async fn probe_repo(
    api: &mut Api<'_>,
    name: &str,
    url: &str,
    repo_path: &str,
    access: GitAccessLevel,
    form: &Form,
) -> Result<(Probe, bool), Finding> {
    let upload = advertisement(api, repo_path, Service::UploadPack).await?;
    let refused = git_access::judge(Service::UploadPack, &upload, form, name).is_some();
    let mut probe = Probe {
        name: name.to_string(),
        url: url.to_string(),
        upload,
        receive: None,
    };
    if refused {
        return Ok((probe, true));
    }
    if access == GitAccessLevel::Write {
        let receive = advertisement(api, repo_path, Service::ReceivePack).await?;
        let refused = matches!(receive, Answer::Refused { .. } | Answer::NotGit { .. });
        probe.receive = Some(receive);
        return Ok((probe, refused));
    }
    Ok((probe, false))
}

/// The secret git is sent with: the token or password, or (OAuth client credentials) the access
/// token the token endpoint issued. None: nothing git can use.
fn git_secret(c: &Credential, identity: &Identity) -> Option<String> {
    match c {
        Credential::AccessToken { token, .. } | Credential::ApiToken { token, .. } => {
            Some(token.expose().to_string())
        }
        Credential::Basic { password, .. } => Some(password.expose().to_string()),
        Credential::OAuthClient { .. } => identity
            .authorization
            .as_ref()
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::to_string),
        Credential::AppPassword { .. } | Credential::OAuthAppLink { .. } => None,
    }
}

/// A connection to a clone origin other than the API's (Cloud: bitbucket.org beside
/// api.bitbucket.org), through the same network, reachability and TLS steps; a failure there is
/// GitAccess's, naming the clone origin.
async fn open_other(run: &mut Run<'_>, o: &Origin) -> Result<Session, CheckResult> {
    let allowed = run
        .input
        .req
        .ports
        .clone()
        .unwrap_or_else(|| run.input.spec.allowed_ports());
    super::open(run, o, allowed).await.map_err(|failed| {
        let f = match failed.verdict {
            Verdict::Failed(f) => git_access::clone_origin_failed(&o.url, f),
            // open() stops only at a failure, so this is not met.
            _ => git_access::clone_origin_unreachable(&o.url),
        };
        CheckResult::failed(Check::GitAccess, f)
    })
}

/// What status.git says: the clone URLs and the credential form to configure (never the secret).
fn git_info(access: GitAccessLevel, form: &Form, repositories: Vec<GitRepository>) -> GitInfo {
    GitInfo {
        access,
        scheme: form.scheme.as_str().to_string(),
        username: form.needed_username.clone(),
        configure: form.configure.clone(),
        repositories,
        ssh: None,
    }
}
