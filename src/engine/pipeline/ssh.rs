//! Steps for transport SSH, after the REST steps or alone (no spec.auth): the network path and
//! TCP to the SSH host, then HostKeyVerified (every host key type the server offers, fetched
//! one handshake each, judged against the consumer's known_hosts), Authenticated (the key
//! offered without a signature first), and the advertisements of git-upload-pack (and
//! git-receive-pack for Write) on exec channels: RepositoryAccess, when no REST step decided
//! it, and GitAccess. Decided by `checks/host_key.rs` and `checks/git_access/ssh.rs`.

use super::connect::{self, Connected};
use super::repositories::Clones;
use super::{Leg, Run, Step, Stopped, network};
use crate::api::{Flavor, GitAccessLevel, GitInfo, GitRepository, HostKeyInfo, SshInfo};
use crate::bitbucket::git::{Service, parse_refs};
use crate::catalogue::Check;
use crate::checks::credentials::ssh::SshCredential;
use crate::checks::git_access::ssh::{self as judge, ExecAnswer, SshUrl};
use crate::checks::host_key;
use crate::checks::spec::Origin;
use crate::checks::{CheckResult, Finding, Verdict};
use crate::engine::verdicts::Verdicts;
use crate::ssh::client::{self, Accept, Authentication, Presented, Session};
use crate::ssh::kexinit;
use crate::ssh::known_hosts::{self, KeyType, KnownHosts};
use crate::withhold;

/// Where git over SSH is checked: the URL's user, host and port, and each listed repository's
/// path there.
struct Target {
    url: SshUrl,
    origin: Origin,
    repos: Vec<(String, String)>,
}

/// The SSH steps, each decided in turn.
pub(super) async fn run(
    v: &mut Verdicts,
    run: &mut Run<'_>,
    ssh: &SshCredential,
    clones: Option<&Clones>,
) -> Result<(), Stopped> {
    let t = v.decide(target(run, ssh, clones))?;
    let mut leg = Leg::new(&t.origin, vec![t.url.port]);
    let hint = |r| hinted(r, |f| judge::network_hint(f, &t.url.host, t.url.port));
    let path = v.decide(network::path(run, &mut leg).await.map_err(hint))?;
    let conn = v.decide(connect::open(run, &leg, path).await.map_err(hint))?;
    let session = v.decide(host_keys(run, &leg, &t, ssh, conn).await)?;
    let session = v.decide(authenticate(run, &t, ssh, session).await)?;
    v.decide(git(run, &t, session).await)
}

fn target(run: &Run<'_>, ssh: &SshCredential, clones: Option<&Clones>) -> Step<Target> {
    let input = run.input;
    let spec = &input.spec;
    let invalid = |f: Finding| CheckResult::failed(Check::GitAccess, f);
    let advertised = clones.and_then(|c| c.values().flatten().next());
    let configured = ssh
        .url
        .clone()
        .or_else(|| spec.git_ssh().and_then(|s| s.url.clone()));
    let raw = match (configured, advertised, spec.flavor) {
        (Some(u), _, _) => u,
        (None, Some(a), _) => a.clone(),
        (None, None, Flavor::Cloud) => format!("ssh://git@{}", judge::CLOUD_SSH_HOST),
        (None, None, Flavor::DataCenter) => {
            return Err(invalid(Finding::new(
                crate::catalogue::Cause::InvalidSpec,
                "Data Center advertised no SSH clone URL (is SSH access enabled?): set spec.git.ssh.url to where the consumer connects",
            )));
        }
    };
    let url = SshUrl::parse(&raw).map_err(invalid)?;
    // An Argo CD Secret's url names a repository (or, for a credential template, a prefix of
    // many), never a path under which repositories live.
    let prefix = if ssh.url.is_some() {
        ""
    } else {
        url.path.as_str()
    };
    let origin_url = url::Url::parse(&format!("ssh://{}:{}", bracket(&url.host), url.port))
        .map_err(|e| {
            invalid(Finding::new(
                crate::catalogue::Cause::InvalidSpec,
                e.to_string(),
            ))
        })?;
    let origin = Origin {
        url: origin_url,
        host: url.host.clone(),
    };
    let mut repos: Vec<(String, String)> = input
        .req
        .repositories
        .iter()
        .map(|(name, _)| {
            let path = clones
                .and_then(|c| c.get(name))
                .and_then(|c| c.as_deref())
                .and_then(|c| SshUrl::parse(c).ok())
                .map(|u| u.path)
                .unwrap_or_else(|| judge::repo_path(spec.flavor, prefix, name));
            (name.clone(), path)
        })
        .collect();
    // An Argo CD Secret's url names the repository itself.
    if repos.is_empty() && ssh.url.is_some() && !url.path.is_empty() {
        let name = url.path.trim_end_matches(".git").to_string();
        repos.push((name, url.path.clone()));
    }
    Ok((Target { url, origin, repos }, Vec::new()))
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// HostKeyVerified: the server's offer, then one handshake per key type it offers; the one the
/// consumer negotiates (the first type known_hosts lists that the server offers) goes on, and
/// only with the listed key.
async fn host_keys(
    run: &mut Run<'_>,
    leg: &Leg<'_>,
    t: &Target,
    ssh: &SshCredential,
    conn: Connected,
) -> Step<Session> {
    let timeout = run.env.net.request_timeout;
    let (host, port) = (t.url.host.as_str(), t.url.port);
    let failed = |f| CheckResult::failed(Check::HostKeyVerified, f);
    let Connected {
        mut stream, route, ..
    } = conn;
    let offer =
        match tokio::time::timeout(timeout, kexinit::scan(&mut stream, client::CLIENT_IDENT)).await
        {
            Ok(Ok(o)) => o,
            Ok(Err(e)) => return Err(failed(judge::not_ssh(host, port, &e.to_string()))),
            Err(_) => {
                let f = judge::no_answer(host, port, timeout);
                return Err(CheckResult::failed(Check::Reachable, f));
            }
        };
    drop(stream);
    let offers = &offer.host_key_algorithms;
    let known = KnownHosts::parse(&ssh.known_hosts).lookup(host, port);
    let skip = run
        .input
        .spec
        .git_ssh()
        .and_then(|s| s.insecure_ignore_host_key);
    let skip = skip.unwrap_or(false);
    let preferred = host_key::types_to_fetch(&known, offers);
    // A consumer that checks no host key goes on with the first type the server holds.
    let preferred = match preferred.is_empty() && skip {
        true => host_key::server_types(offers).into_iter().take(1).collect(),
        false => preferred,
    };
    // Every type the server offers, the consumer's first last: its session is the one kept.
    let mut types: Vec<KeyType> = host_key::server_types(offers)
        .into_iter()
        .filter(|k| !preferred.contains(k))
        .collect();
    types.extend(preferred.iter().rev().copied());
    let mut fetched: Vec<(KeyType, Presented)> = Vec::new();
    let mut session = None;
    // A listed @cert-authority: the server's certificates are what the consumer verifies.
    let certificates = !known.authorities.is_empty();
    for k in types {
        let certificate = certificates
            .then(|| host_key::certificate_algorithm_for(k, offers))
            .flatten();
        let (alg, cert) = match (certificate, host_key::algorithm_for(k, offers)) {
            (Some(a), _) => (a, true),
            (None, Some(a)) => (a, false),
            (None, None) => continue,
        };
        let first = preferred.first() == Some(&k);
        let accept = if first { Accept::Judged } else { Accept::Never };
        let stream = connect::dial(run, leg, &route, port).await?;
        match client::handshake(stream, alg, cert, accept, timeout).await {
            Ok((presented, s)) => {
                if first {
                    session = s;
                }
                fetched.push((k, presented));
            }
            Err(client::SshError::NoCommonHostKey(_)) => {}
            Err(e) => return Err(failed(judge::handshake_failed(host, port, &e.to_string()))),
        }
    }
    let now = (run.env.clock)().as_second().max(0).unsigned_abs();
    let verdict = host_key::verdict(&host_key::Observed {
        host,
        port,
        known: &known,
        server_offers: offers,
        fetched: &fetched,
        now,
    });
    let verdict = match skip {
        true => host_key::skipped(verdict, host, port),
        false => verdict,
    };
    run.found.git = Some(git_info(run.input.req.git, t, ssh_info(t, ssh, &fetched)));
    if verdict.failure().is_some() {
        // Nothing was authenticated on the kept session: it closes with the key unverified.
        if let Some(s) = session {
            s.close().await;
        }
        return Err(hinted(verdict, |f| judge::moved_hint(f, host)));
    }
    match session {
        Some(s) => Ok((s, vec![verdict])),
        // The verdict passed on the consumer's type, but its handshake did not go on.
        None => Err(failed(judge::session_lost(host, port))),
    }
}

fn ssh_info(t: &Target, ssh: &SshCredential, fetched: &[(KeyType, Presented)]) -> SshInfo {
    let mut host_keys: Vec<HostKeyInfo> = fetched
        .iter()
        .map(|(k, p)| HostKeyInfo {
            type_: k.as_str().to_string(),
            sha256: known_hosts::fingerprint(&p.key()),
        })
        .collect();
    host_keys.sort_by(|a, b| a.type_.cmp(&b.type_));
    SshInfo {
        url: t.url.origin(),
        host_keys,
        known_hosts: host_key::knowledge(&t.url.host, t.url.port, fetched),
        public_key_fingerprint: Some(ssh.fingerprint()),
    }
}

fn git_info(access: GitAccessLevel, t: &Target, ssh: SshInfo) -> GitInfo {
    GitInfo {
        access,
        scheme: "SSH".into(),
        username: Some(t.url.user.clone()),
        configure: format!(
            "git over SSH as {}@{} port {}, with the key in the consumer's Secret and the known_hosts lines listed here",
            t.url.user, t.url.host, t.url.port
        ),
        repositories: t
            .repos
            .iter()
            .map(|(name, path)| GitRepository {
                name: name.clone(),
                clone_url: format!("{}/{path}", t.url.origin()),
            })
            .collect(),
        ssh: Some(Box::new(ssh)),
    }
}

/// Authenticated over SSH: the key offered without a signature, signed only if accepted. A
/// refused key is withheld like any refused credential.
async fn authenticate(
    run: &mut Run<'_>,
    t: &Target,
    ssh: &SshCredential,
    mut session: Session,
) -> Step<Session> {
    let env = run.env;
    let failed = |f| CheckResult::failed(Check::Authenticated, f);
    let key = run.input.ssh_key(&t.url.user, &t.url.host, t.url.port);
    if let Some(notice) = run.withheld(withhold::Kind::SshKey, &key) {
        session.close().await;
        return Err(failed(notice));
    }
    let fp = ssh.fingerprint();
    let (user, host) = (t.url.user.as_str(), t.url.host.as_str());
    match session.authenticate(user, ssh.key.clone()).await {
        Ok(Authentication::Accepted) => {
            env.withheld.release(&key);
            Ok((session, vec![judge::key_accepted(user, host, &fp)]))
        }
        Ok(Authentication::Refused) => {
            session.close().await;
            let f = judge::key_rejected(user, host, &fp);
            Err(failed(run.refused(withhold::Kind::SshKey, key, f)))
        }
        Err(e) => {
            session.close().await;
            Err(failed(judge::session_failed(
                host,
                t.url.port,
                &e.to_string(),
            )))
        }
    }
}

/// The advertisements, repository by repository; a refusal stops the run.
async fn git(run: &mut Run<'_>, t: &Target, mut session: Session) -> Step<()> {
    let input = run.input;
    let access = input.req.git;
    let mut decided = Vec::new();
    if t.repos.is_empty() {
        session.close().await;
        if input.rest.is_none() {
            decided.push(crate::checks::repositories::check(&[]));
        }
        decided.push(crate::checks::git_access::nothing_required());
        return Ok(((), decided));
    }
    let services: &[Service] = match access {
        GitAccessLevel::Read => &[Service::UploadPack],
        GitAccessLevel::Write => &[Service::UploadPack, Service::ReceivePack],
    };
    for (name, path) in &t.repos {
        for service in services {
            let answer = match session.advertisement(&judge::command(*service, path)).await {
                Ok(a) => a,
                Err(e) => {
                    session.close().await;
                    return Err(CheckResult::failed(
                        Check::GitAccess,
                        judge::session_failed(&t.url.host, t.url.port, &e.to_string()),
                    ));
                }
            };
            let answer = read(&answer);
            if let Some((check, f)) = judge::judge(input.spec.flavor, *service, &answer, name) {
                session.close().await;
                return Err(CheckResult::failed(check, f));
            }
        }
    }
    session.close().await;
    if input.rest.is_none() {
        decided.push(judge::repositories_passed(t.repos.len()));
    }
    let mut passed = judge::passed(access, &t.url.origin(), t.repos.len());
    if let Some(w) = judge::host_moved(&t.url.host, t.url.port) {
        passed.warnings.push(w);
    }
    decided.push(passed);
    Ok(((), decided))
}

/// An exec channel's answer as the checks read it.
fn read(a: &client::ExecAnswer) -> ExecAnswer {
    if a.stdout.is_empty() {
        return ExecAnswer::Refused {
            text: a.text(),
            exit: a.exit,
        };
    }
    match parse_refs(&a.stdout) {
        Ok(adv) => ExecAnswer::Advertised(adv),
        Err(detail) => ExecAnswer::NotGit(detail),
    }
}

/// A failed verdict with its finding's message amended (where Cloud serves SSH now).
fn hinted(mut r: CheckResult, hint: impl FnOnce(Finding) -> Finding) -> CheckResult {
    if let Verdict::Failed(f) = &mut r.verdict {
        *f = hint(f.clone());
    }
    r
}
