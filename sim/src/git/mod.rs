//! git's smart HTTP for every fixture repository (git's Documentation/gitprotocol-http.txt): the
//! ref advertisements of `git-upload-pack` and `git-receive-pack`, as `git ls-remote`, `git
//! clone` and `git push --dry-run` ask for them first, and upload-pack's POST, which answers a
//! clone or fetch with a real pack of the repository's one commit (`objects.rs`, `upload.rs`).
//! Who may read or push is each flavour's (`cloud::git_authorize`, `dc::git_authorize`); this
//! module is the protocol.
//!
//! Paths: Cloud `/{workspace}/{slug}.git/info/refs`; Data Center
//! `{basePath}/scm/{project}/{slug}.git/info/refs` (the clone URLs the REST answers advertise),
//! and `.../git-upload-pack` beside them. receive-pack's POST is not served: nothing is ever
//! pushed to the simulator, and `push --dry-run` stops at the advertisement. git over SSH
//! (`ssh/`) sends the same advertisement, [`refs_advertisement`], without the HTTP-only
//! `# service=` header, and the same [`Upload`] exchange after it.

mod objects;
mod upload;

use http::Method;

use crate::fixture::Fixture;
use crate::http::{self as h, Req, Resp};
use crate::state::Shared;
use crate::{cloud, dc};

pub(crate) use objects::Repo;
pub(crate) use upload::{Progress, Upload};

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

/// A repository with commits as git serves it: the branch HEAD names, and its objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Served {
    pub(crate) branch: String,
    pub(crate) repo: Repo,
}

/// A Cloud repository as git serves it; None when it has no commits (or does not exist).
pub(crate) fn cloud_served(f: &Fixture, ws: &str, slug: &str) -> Option<Served> {
    let r = f
        .cloud
        .workspaces
        .iter()
        .filter(|w| w.slug == ws)
        .flat_map(|w| &w.repositories)
        .find(|r| r.slug == slug)?;
    (!r.empty).then(|| Served {
        branch: r.mainbranch.clone(),
        repo: Repo::new(&format!("{ws}/{slug}")),
    })
}

/// A Data Center repository as git serves it (project key case-insensitive, so its objects are
/// named by the key upper-cased); None when it has no commits (or does not exist).
pub(crate) fn dc_served(f: &Fixture, key: &str, slug: &str) -> Option<Served> {
    let r = f
        .datacenter
        .projects
        .iter()
        .filter(|p| p.key.eq_ignore_ascii_case(key))
        .flat_map(|p| &p.repositories)
        .find(|r| r.slug == slug)?;
    (!r.empty).then(|| Served {
        // Data Center's HEAD is `master` here (the fixture has no default branch for it).
        branch: "master".to_owned(),
        repo: Repo::new(&format!("{}/{slug}", key.to_ascii_uppercase())),
    })
}

/// The answer to a git request, or None when the path is not a git path (the REST handlers take it).
pub(crate) fn handle(shared: &Shared, req: &Req) -> Option<Resp> {
    let l = &shared.listeners[req.listener];
    let (repo_path, post) = if let Some(p) = req.path.strip_suffix("/info/refs") {
        (p, None)
    } else if let Some(p) = req.path.strip_suffix("/git-upload-pack") {
        (p, Some(Service::UploadPack))
    } else if let Some(p) = req.path.strip_suffix("/git-receive-pack") {
        (p, Some(Service::ReceivePack))
    } else {
        return None;
    };
    let (flavour, owner, slug) = match_repo(l.dc, l.cloud, &l.base_path, repo_path)?;
    let service = match post {
        Some(Service::ReceivePack) => {
            // A push: never accepted, so never authorized either.
            return Some(h::text(
                405,
                "The simulator accepts no push: git-receive-pack serves its ref advertisement only (GET info/refs).",
            ));
        }
        Some(Service::UploadPack) if req.method != Method::POST => {
            return Some(h::text(405, "Method not allowed"));
        }
        Some(Service::UploadPack) => Service::UploadPack,
        None if req.method != Method::GET && req.method != Method::HEAD => {
            return Some(h::text(405, "Method not allowed"));
        }
        None => match req.query_param("service").as_deref() {
            Some("git-upload-pack") => Service::UploadPack,
            Some("git-receive-pack") => Service::ReceivePack,
            // The dumb protocol: Bitbucket speaks only smart HTTP.
            _ => {
                return Some(h::text(
                    403,
                    "Smart HTTP only: add ?service=git-upload-pack",
                ));
            }
        },
    };
    let push = service == Service::ReceivePack;
    // The POST is authorized as its advertisement was: a refused credential gets no pack.
    let (allowed, served) = match flavour {
        Flavour::Cloud => (
            cloud::git_authorize(shared, req, &owner, &slug, push),
            cloud_served(&shared.fixture, &owner, &slug),
        ),
        Flavour::Dc => (
            dc::git_authorize(shared, req, &owner, &slug, push),
            dc_served(&shared.fixture, &owner, &slug),
        ),
    };
    if let Err(r) = allowed {
        return Some(r);
    }
    if post.is_some() {
        return Some(upload_pack(req, served.map(|s| s.repo)));
    }
    let body = advertisement(service, served.as_ref());
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

/// upload-pack's POST: one stateless round of [`Upload`], as git's http-backend runs it.
fn upload_pack(req: &Req, repo: Option<Repo>) -> Resp {
    let media = req
        .header("content-type")
        .and_then(|t| t.split(';').next())
        .map(str::trim);
    if media != Some("application/x-git-upload-pack-request") {
        return h::text(415, "Unsupported Media Type");
    }
    // git gzips request bodies over 1 KiB (a fetch's haves).
    let gunzipped;
    let body = match req.header("content-encoding").map(str::trim) {
        None | Some("identity") => &req.body[..],
        Some(e) if e.eq_ignore_ascii_case("gzip") || e.eq_ignore_ascii_case("x-gzip") => {
            match gunzip(&req.body) {
                Some(b) => {
                    gunzipped = b;
                    &gunzipped[..]
                }
                None => return h::text(400, "The gzip request body does not inflate"),
            }
        }
        Some(_) => return h::text(415, "Unsupported Content-Encoding"),
    };
    let mut u = Upload::new(repo, true);
    u.push(body);
    u.end();
    let mut r = h::bytes(200, "application/x-git-upload-pack-result", u.take_output());
    h::set_header(&mut r, "cache-control", "no-cache");
    r
}

/// The data of a gzip member (RFC 1952), inflated to at most 8 MiB; None if it is not one.
fn gunzip(body: &[u8]) -> Option<Vec<u8>> {
    const FHCRC: u8 = 2;
    const FEXTRA: u8 = 4;
    const FNAME: u8 = 8;
    const FCOMMENT: u8 = 16;
    let (&[0x1f, 0x8b, 8, flags], rest) = body.split_first_chunk::<4>()? else {
        return None;
    };
    // MTIME, XFL and OS.
    let mut rest = rest.get(6..)?;
    if flags & FEXTRA != 0 {
        let (len, r) = rest.split_first_chunk::<2>()?;
        rest = r.get(usize::from(u16::from_le_bytes(*len))..)?;
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            let nul = rest.iter().position(|b| *b == 0)?;
            rest = rest.get(nul + 1..)?;
        }
    }
    if flags & FHCRC != 0 {
        rest = rest.get(2..)?;
    }
    // The CRC-32 and size trailer are not checked: TLS already guards the bytes in transit.
    miniz_oxide::inflate::decompress_to_vec_with_limit(rest, 8 << 20).ok()
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

/// The smart-HTTP advertisement: service line, flush, then [`refs_advertisement`].
fn advertisement(service: Service, served: Option<&Served>) -> Vec<u8> {
    let mut out = Vec::new();
    pkt(&mut out, &format!("# service={}\n", service.name()));
    out.extend_from_slice(b"0000");
    out.extend_from_slice(&refs_advertisement(service, served));
    out
}

/// The refs as git's pack protocol (v0) starts: HEAD first for upload-pack, the capabilities
/// after a NUL on the first line, then a flush. Every ref names the repository's one commit.
/// `served` None: an empty repository, advertised as git does, one `capabilities^{}` line with
/// the zero id (and no symref: HEAD is unborn).
pub(crate) fn refs_advertisement(service: Service, served: Option<&Served>) -> Vec<u8> {
    let mut out = Vec::new();
    let Some(served) = served else {
        let caps = capabilities(service, None);
        pkt(
            &mut out,
            &format!("{} capabilities^{{}}\0{caps}\n", "0".repeat(40)),
        );
        out.extend_from_slice(b"0000");
        return out;
    };
    let main = format!("refs/heads/{}", served.branch);
    let refs = [main.as_str(), "refs/heads/develop", "refs/tags/v1.0.0"];
    let caps = capabilities(service, Some(&main));
    let id = objects::hex(&served.repo.commit());
    let mut first = true;
    let mut line = |out: &mut Vec<u8>, name: &str| {
        if first {
            pkt(out, &format!("{id} {name}\0{caps}\n"));
            first = false;
        } else {
            pkt(out, &format!("{id} {name}\n"));
        }
    };
    if service == Service::UploadPack {
        line(&mut out, "HEAD");
    }
    for r in refs {
        line(&mut out, r);
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
        let served = Served {
            branch: "main".into(),
            repo: Repo::new("acme/app"),
        };
        let a = advertisement(Service::UploadPack, Some(&served));
        let text = String::from_utf8_lossy(&a);
        assert!(
            text.starts_with("001e# service=git-upload-pack\n0000"),
            "{text}"
        );
        assert!(text.contains("symref=HEAD:refs/heads/main"));
        assert!(text.ends_with("0000"));
        // Every ref names the real commit.
        let id = objects::hex(&served.repo.commit());
        for r in [
            "HEAD",
            "refs/heads/main",
            "refs/heads/develop",
            "refs/tags/v1.0.0",
        ] {
            assert!(text.contains(&format!("{id} {r}")), "{r}: {text}");
        }
    }

    #[test]
    fn served_repositories() {
        let f = Fixture::from_yaml(
            "listeners: [{name: l, serves: [cloud, datacenter]}]\ncloud:\n  workspaces:\n    - slug: acme\n      repositories: [{slug: app, mainbranch: trunk}, {slug: fresh, empty: true}]\ndatacenter:\n  projects:\n    - key: PROJ\n      repositories: [{slug: app}]\n",
        )
        .unwrap();
        let app = cloud_served(&f, "acme", "app").unwrap();
        assert_eq!(app.branch, "trunk");
        assert_eq!(app.repo, Repo::new("acme/app"));
        assert_eq!(cloud_served(&f, "acme", "fresh"), None);
        assert_eq!(cloud_served(&f, "acme", "nope"), None);
        // The project key in any case names the same objects.
        let dc = dc_served(&f, "proj", "app").unwrap();
        assert_eq!(dc, dc_served(&f, "PROJ", "app").unwrap());
        assert_eq!(dc.branch, "master");
    }

    #[test]
    fn gzip_bodies() {
        let data = b"0032want 0123456789012345678901234567890123456789\n0000".repeat(40);
        let deflated = miniz_oxide::deflate::compress_to_vec(&data, 6);
        let mut plain = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
        plain.extend_from_slice(&deflated);
        assert_eq!(gunzip(&plain).unwrap(), data);
        // FEXTRA, FNAME and FCOMMENT are skipped.
        let mut named = vec![
            0x1f,
            0x8b,
            8,
            4 | 8 | 16,
            0,
            0,
            0,
            0,
            0,
            3,
            2,
            0,
            b'x',
            b'y',
        ];
        named.extend_from_slice(b"req\0a comment\0");
        named.extend_from_slice(&deflated);
        assert_eq!(gunzip(&named).unwrap(), data);
        assert_eq!(gunzip(b"0032want"), None);
        assert_eq!(gunzip(&plain[..12]), None);
    }

    #[test]
    fn empty_repository_is_capabilities_line() {
        let a = refs_advertisement(Service::ReceivePack, None);
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
        let up = refs_advertisement(Service::UploadPack, None);
        assert!(!String::from_utf8_lossy(&up).contains("symref"));
    }
}
