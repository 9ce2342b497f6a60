//! git's smart HTTP for every fixture repository: the ref advertisements of `git-upload-pack`
//! and `git-receive-pack` (git's Documentation/gitprotocol-http.txt), as `git ls-remote`, `git
//! clone` and `git push --dry-run` ask for them first. Who may read or push is each flavour's
//! (`cloud::git_authorize`, `dc::git_authorize`); this module is the protocol.
//!
//! Paths: Cloud `/{workspace}/{slug}.git/info/refs`; Data Center
//! `{basePath}/scm/{project}/{slug}.git/info/refs` (the clone URLs the REST answers advertise).
//! The POSTs that would transfer packs are not served: bbconn never sends them, and neither
//! `ls-remote` nor `push --dry-run` needs them. git over SSH (`ssh/`) sends the same
//! advertisement, [`refs_advertisement`], without the HTTP-only `# service=` header.

use http::Method;

use crate::http::{self as h, Req, Resp};
use crate::state::Shared;
use crate::{cloud, dc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    UploadPack,
    ReceivePack,
}

impl Service {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Service::UploadPack => "git-upload-pack",
            Service::ReceivePack => "git-receive-pack",
        }
    }
}

enum Flavour {
    Cloud,
    Dc,
}

/// The answer to a git request, or None when the path is not a git path (the REST handlers take it).
pub(crate) fn handle(shared: &Shared, req: &Req) -> Option<Resp> {
    let l = &shared.listeners[req.listener];
    let (repo_path, what) = if let Some(p) = req.path.strip_suffix("/info/refs") {
        (p, None)
    } else if let Some(p) = req.path.strip_suffix("/git-upload-pack") {
        (p, Some(Service::UploadPack))
    } else if let Some(p) = req.path.strip_suffix("/git-receive-pack") {
        (p, Some(Service::ReceivePack))
    } else {
        return None;
    };
    let (flavour, owner, slug) = match_repo(l.dc, l.cloud, &l.base_path, repo_path)?;
    if what.is_some() {
        // A pack exchange: never needed by the probes this simulator serves.
        return Some(h::text(
            405,
            "The simulator serves ref advertisements only (GET info/refs).",
        ));
    }
    if req.method != Method::GET && req.method != Method::HEAD {
        return Some(h::text(405, "Method not allowed"));
    }
    let service = match req.query_param("service").as_deref() {
        Some("git-upload-pack") => Service::UploadPack,
        Some("git-receive-pack") => Service::ReceivePack,
        // The dumb protocol: Bitbucket speaks only smart HTTP.
        _ => {
            return Some(h::text(
                403,
                "Smart HTTP only: add ?service=git-upload-pack",
            ));
        }
    };
    let push = service == Service::ReceivePack;
    let (allowed, head) = match flavour {
        Flavour::Cloud => (
            cloud::git_authorize(shared, req, &owner, &slug, push),
            cloud::git_mainbranch(shared, &owner, &slug),
        ),
        Flavour::Dc => (
            dc::git_authorize(shared, req, &owner, &slug, push),
            Some("master".to_owned()),
        ),
    };
    if let Err(r) = allowed {
        return Some(r);
    }
    let branch = head.unwrap_or_else(|| "main".to_owned());
    let empty = match flavour {
        Flavour::Cloud => cloud_repo_empty(shared, &owner, &slug),
        Flavour::Dc => dc_repo_empty(shared, &owner, &slug),
    };
    let body = advertisement(
        service,
        &format!("{owner}/{slug}"),
        (!empty).then_some(branch.as_str()),
    );
    let mut r = h::bytes(
        200,
        match service {
            Service::UploadPack => "application/x-git-upload-pack-advertisement",
            Service::ReceivePack => "application/x-git-receive-pack-advertisement",
        },
        body,
    );
    h::set_header(&mut r, "cache-control", "no-cache");
    Some(r)
}

/// (flavour, owner, slug) of a repository path, without `.git`.
fn match_repo(
    serves_dc: bool,
    serves_cloud: bool,
    base_path: &str,
    path: &str,
) -> Option<(Flavour, String, String)> {
    let strip = |s: &str| s.strip_suffix(".git").unwrap_or(s).to_owned();
    if serves_dc
        && let Some(rest) = path
            .strip_prefix(base_path)
            .and_then(|r| r.strip_prefix("/scm/"))
        && let [key, slug] = h::segments(rest).as_slice()
    {
        return Some((Flavour::Dc, (*key).to_owned(), strip(slug)));
    }
    if serves_cloud && let [ws, slug] = h::segments(path).as_slice() {
        return Some((Flavour::Cloud, (*ws).to_owned(), strip(slug)));
    }
    None
}

/// One pkt-line (gitprotocol-common.txt): four hex digits of length, then the data.
fn pkt(out: &mut Vec<u8>, data: &str) {
    out.extend_from_slice(format!("{:04x}", data.len() + 4).as_bytes());
    out.extend_from_slice(data.as_bytes());
}

/// A stable 40-hex object id for a ref.
fn object_id(repo: &str, r: &str) -> String {
    (0..3)
        .map(|i| format!("{:016x}", h::fnv(&format!("{repo}#{r}#{i}"))))
        .collect::<String>()[..40]
        .to_owned()
}

/// Whether a fixture Cloud repository has no commits.
pub(crate) fn cloud_repo_empty(shared: &Shared, ws: &str, slug: &str) -> bool {
    shared
        .fixture
        .cloud
        .workspaces
        .iter()
        .filter(|w| w.slug == ws)
        .flat_map(|w| &w.repositories)
        .any(|r| r.slug == slug && r.empty)
}

/// Whether a fixture Data Center repository has no commits (project key case-insensitive).
pub(crate) fn dc_repo_empty(shared: &Shared, key: &str, slug: &str) -> bool {
    shared
        .fixture
        .datacenter
        .projects
        .iter()
        .filter(|p| p.key.eq_ignore_ascii_case(key))
        .flat_map(|p| &p.repositories)
        .any(|r| r.slug == slug && r.empty)
}

/// The smart-HTTP advertisement: service line, flush, then [`refs_advertisement`].
fn advertisement(service: Service, repo: &str, branch: Option<&str>) -> Vec<u8> {
    let mut out = Vec::new();
    pkt(&mut out, &format!("# service={}\n", service.name()));
    out.extend_from_slice(b"0000");
    out.extend_from_slice(&refs_advertisement(service, repo, branch));
    out
}

/// The refs as git's pack protocol (v0) starts: HEAD first for upload-pack, the capabilities
/// after a NUL on the first line, then a flush. `branch` None: an empty repository, advertised
/// as git does, one `capabilities^{}` line with the zero id (and no symref: HEAD is unborn).
pub(crate) fn refs_advertisement(service: Service, repo: &str, branch: Option<&str>) -> Vec<u8> {
    let mut out = Vec::new();
    let Some(branch) = branch else {
        let caps = capabilities(service, None);
        pkt(
            &mut out,
            &format!("{} capabilities^{{}}\0{caps}\n", "0".repeat(40)),
        );
        out.extend_from_slice(b"0000");
        return out;
    };
    let main = format!("refs/heads/{branch}");
    let refs = [main.as_str(), "refs/heads/develop", "refs/tags/v1.0.0"];
    let caps = capabilities(service, Some(&main));
    let mut first = true;
    let mut line = |out: &mut Vec<u8>, name: &str, id: &str| {
        if first {
            pkt(out, &format!("{id} {name}\0{caps}\n"));
            first = false;
        } else {
            pkt(out, &format!("{id} {name}\n"));
        }
    };
    if service == Service::UploadPack {
        line(&mut out, "HEAD", &object_id(repo, &main));
    }
    for r in refs {
        line(&mut out, r, &object_id(repo, r));
    }
    out.extend_from_slice(b"0000");
    out
}

fn capabilities(service: Service, head: Option<&str>) -> String {
    match service {
        Service::UploadPack => {
            let symref = head
                .map(|h| format!(" symref=HEAD:{h}"))
                .unwrap_or_default();
            format!(
                "multi_ack thin-pack side-band side-band-64k ofs-delta shallow no-progress include-tag multi_ack_detailed no-done{symref} agent=git/bbconn-sim"
            )
        }
        Service::ReceivePack => {
            "report-status delete-refs side-band-64k quiet atomic ofs-delta agent=git/bbconn-sim"
                .to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_of_both_flavours() {
        assert!(matches!(
            match_repo(true, true, "/bitbucket", "/bitbucket/scm/proj/app.git"),
            Some((Flavour::Dc, k, s)) if k == "proj" && s == "app"
        ));
        assert!(matches!(
            match_repo(true, true, "", "/acme/app.git"),
            Some((Flavour::Cloud, w, s)) if w == "acme" && s == "app"
        ));
        assert!(match_repo(true, false, "", "/acme/app.git").is_none());
    }

    #[test]
    fn advertisement_is_pkt_lines() {
        let a = advertisement(Service::UploadPack, "acme/app", Some("main"));
        let text = String::from_utf8_lossy(&a);
        assert!(
            text.starts_with("001e# service=git-upload-pack\n0000"),
            "{text}"
        );
        assert!(text.contains("symref=HEAD:refs/heads/main"));
        assert!(text.ends_with("0000"));
        assert_eq!(object_id("a", "b").len(), 40);
    }

    #[test]
    fn empty_repository_is_capabilities_line() {
        let a = refs_advertisement(Service::ReceivePack, "acme/app", None);
        let text = String::from_utf8_lossy(&a);
        let len = usize::from_str_radix(&text[..4], 16).unwrap();
        assert_eq!(len + 4, text.len(), "one pkt-line, then the flush: {text}");
        assert!(
            text[4..].starts_with(&format!(
                "{} capabilities^{{}}\0report-status",
                "0".repeat(40)
            )),
            "{text}"
        );
        assert!(text.ends_with("\n0000"));
        let up = refs_advertisement(Service::UploadPack, "acme/app", None);
        assert!(!String::from_utf8_lossy(&up).contains("symref"));
    }
}
