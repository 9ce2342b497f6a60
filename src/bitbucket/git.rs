//! git's smart HTTP, read-only: the ref advertisements that `git clone` and `git push` ask for
//! first (`GET {clone URL}/info/refs?service=git-upload-pack|git-receive-pack`). Neither changes
//! anything: the POSTs that follow them do, and bbconn never sends those. What an answer means
//! for GitAccess is decided in `checks/git_access.rs`.
//!
//! Format: git's Documentation/gitprotocol-http.txt ("Smart Clients") and gitprotocol-common.txt
//! (pkt-line): `Content-Type: application/x-git-<service>-advertisement`, a pkt-line
//! `# service=git-<service>\n`, a flush-pkt `0000`, then one pkt-line per ref
//! (`<40 hex> <refname>`, the first followed by NUL and the capabilities), and a flush-pkt.

use super::Error;
use super::{Api, error_message};
use crate::scrub::excerpt;

/// The most of a server's text a verdict quotes: a pkt-line can be 64 KiB.
const QUOTED: usize = 80;

/// The two services a consumer uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    /// clone, fetch, ls-remote.
    UploadPack,
    /// push.
    ReceivePack,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::UploadPack => "git-upload-pack",
            Service::ReceivePack => "git-receive-pack",
        }
    }
}

/// A verified advertisement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advertisement {
    /// Refs advertised (an empty repository advertises none).
    pub refs: usize,
    /// Where HEAD points, from the `symref=HEAD:` capability.
    pub head: Option<String>,
}

/// What Bitbucket answered to an advertisement request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    Advertised(Advertisement),
    /// 401 or 403 (or 404): `message` is the answer's text (git prints it after `remote:`).
    Refused {
        status: u16,
        message: String,
    },
    /// 200 (or another status) with something that is not git: a login page, a proxy's answer.
    NotGit {
        status: u16,
        detail: String,
    },
}

/// `GET {repo_path}/info/refs?service=…` on `api`'s origin, with `api`'s credential. `repo_path`
/// is the clone URL's path (e.g. `/scm/proj/app.git`).
pub async fn advertisement(
    api: &mut Api<'_>,
    repo_path: &str,
    service: Service,
) -> Result<Answer, Error> {
    let path = format!(
        "{}/info/refs?service={}",
        repo_path.trim_end_matches('/'),
        service.name()
    );
    let r = api.get(&path).await?;
    let status = r.status.as_u16();
    Ok(match status {
        200 => match parse_advertisement(service, r.header("content-type"), &r.body) {
            Ok(a) => Answer::Advertised(a),
            Err(detail) => Answer::NotGit { status, detail },
        },
        401 | 403 | 404 => Answer::Refused {
            status,
            message: refusal_text(&r),
        },
        _ => Answer::NotGit {
            status,
            detail: format!("answered {status}: {}", error_message(&r)),
        },
    })
}

/// The refusal's text: the JSON error message where there is one, else the plain-text body's
/// first lines (Cloud's git refusals are plain text that git shows after `remote:`).
fn refusal_text(r: &crate::transport::http::Response) -> String {
    if r.json().is_some() {
        return error_message(r);
    }
    let text = String::from_utf8_lossy(&r.body);
    let joined = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    joined.chars().take(300).collect()
}

/// Checks that an answer is a smart-HTTP advertisement for `service`, and counts its refs.
pub fn parse_advertisement(
    service: Service,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Advertisement, String> {
    let expected = format!("application/x-{}-advertisement", service.name());
    let ct = content_type.unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case(&expected) {
        return Err(format!(
            "the answer is not a git advertisement: Content-Type {:?}, not {expected} (a login page or a proxy answered?)",
            if ct.is_empty() {
                "none".into()
            } else {
                excerpt(ct, QUOTED)
            }
        ));
    }
    let mut pkts = PktLines { rest: body };
    let first = match pkts.next() {
        Some(Ok(Pkt::Data(d))) => d,
        Some(Err(e)) => return Err(e),
        _ => return Err("the advertisement does not start with a service line".into()),
    };
    let line = String::from_utf8_lossy(first);
    let want = format!("# service={}", service.name());
    if line.trim_end_matches('\n') != want {
        return Err(format!(
            "the advertisement's first line is {:?}, not {want:?}",
            excerpt(line.trim_end(), QUOTED)
        ));
    }
    match pkts.next() {
        Some(Ok(Pkt::Flush)) => {}
        Some(Err(e)) => return Err(e),
        _ => return Err("no flush-pkt after the service line".into()),
    }
    refs(pkts)
}

/// The ref advertisement as git's pack protocol sends it over SSH: ref lines up to a flush-pkt,
/// with no service line before them (gitprotocol-pack.txt).
pub fn parse_refs(body: &[u8]) -> Result<Advertisement, String> {
    refs(PktLines { rest: body })
}

fn refs(mut pkts: PktLines<'_>) -> Result<Advertisement, String> {
    let mut refs = 0;
    let mut head = None;
    let mut first_ref = true;
    loop {
        match pkts.next() {
            Some(Ok(Pkt::Flush)) => break,
            Some(Ok(Pkt::Data(d))) => {
                let (refline, caps) = match d.iter().position(|b| *b == 0) {
                    Some(i) if first_ref => (&d[..i], Some(&d[i + 1..])),
                    Some(_) => return Err("capabilities after the first ref".into()),
                    None => (d, None),
                };
                let text = String::from_utf8_lossy(refline);
                let text = text.trim_end_matches('\n');
                let (id, name) = text.split_once(' ').ok_or_else(|| {
                    format!(
                        "ref line {:?} is not \"<id> <name>\"",
                        excerpt(text, QUOTED)
                    )
                })?;
                if !(id.len() == 40 || id.len() == 64) || !id.bytes().all(|b| b.is_ascii_hexdigit())
                {
                    return Err(format!(
                        "ref line {:?} does not start with an object id",
                        excerpt(text, QUOTED)
                    ));
                }
                // An empty repository advertises only its capabilities (gitprotocol-pack.txt).
                if !(first_ref && name == "capabilities^{}" && id.bytes().all(|b| b == b'0')) {
                    refs += 1;
                }
                if let Some(caps) = caps {
                    let caps = String::from_utf8_lossy(caps);
                    head = caps
                        .split_whitespace()
                        .find_map(|c| c.strip_prefix("symref=HEAD:"))
                        .map(str::to_string);
                }
                first_ref = false;
            }
            Some(Err(e)) => return Err(e),
            None => return Err("the advertisement ends without a flush-pkt".into()),
        }
    }
    Ok(Advertisement { refs, head })
}

enum Pkt<'a> {
    Flush,
    Data(&'a [u8]),
}

/// pkt-lines: four hex digits of length (including themselves), then the data; `0000` flushes.
struct PktLines<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for PktLines<'a> {
    type Item = Result<Pkt<'a>, String>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let Some(head) = self.rest.get(..4) else {
            self.rest = &[];
            return Some(Err("a pkt-line is cut short".into()));
        };
        let len = std::str::from_utf8(head)
            .ok()
            .and_then(|h| usize::from_str_radix(h, 16).ok());
        let Some(len) = len else {
            self.rest = &[];
            return Some(Err(format!(
                "not pkt-line framing (starts {:?})",
                excerpt(&String::from_utf8_lossy(head), QUOTED)
            )));
        };
        if len == 0 {
            self.rest = &self.rest[4..];
            return Some(Ok(Pkt::Flush));
        }
        if len < 4 || len > self.rest.len() {
            self.rest = &[];
            return Some(Err(format!("a pkt-line of length {len} does not fit")));
        }
        let data = &self.rest[4..len];
        self.rest = &self.rest[len..];
        Some(Ok(Pkt::Data(data)))
    }
}

/// The https clone URL in a repository's REST answer: `links.clone[]` named `https` (Cloud) or
/// `http` (Data Center, whatever its scheme), per docs/design/bitbucket-api.md "Git over HTTPS".
pub fn clone_url(repo: &serde_json::Value) -> Option<String> {
    let links = repo.pointer("/links/clone")?.as_array()?;
    ["https", "http"].iter().find_map(|want| {
        links.iter().find_map(|l| {
            (l.get("name")?.as_str()? == *want)
                .then(|| l.get("href")?.as_str().map(str::to_string))
                .flatten()
        })
    })
}

/// The ssh clone URL in a repository's REST answer: `links.clone[]` named `ssh`
/// (`ssh://git@host:7999/proj/slug.git` on Data Center, `git@host:ws/slug.git` on Cloud).
pub fn ssh_clone_url(repo: &serde_json::Value) -> Option<String> {
    let links = repo.pointer("/links/clone")?.as_array()?;
    links.iter().find_map(|l| {
        (l.get("name")?.as_str()? == "ssh")
            .then(|| l.get("href")?.as_str().map(str::to_string))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(s: &str) -> String {
        format!("{:04x}{s}", s.len() + 4)
    }

    fn advert(service: &str, refs: &[&str]) -> Vec<u8> {
        let mut s = pkt(&format!("# service={service}\n"));
        s.push_str("0000");
        for r in refs {
            s.push_str(&pkt(r));
        }
        s.push_str("0000");
        s.into_bytes()
    }

    const ID: &str = "3f786850e387550fdab836ed7e6dc881de23001b";

    #[test]
    fn a_real_advertisement_is_accepted() {
        let body = advert(
            "git-upload-pack",
            &[
                &format!("{ID} HEAD\0multi_ack symref=HEAD:refs/heads/main agent=git/2\n"),
                &format!("{ID} refs/heads/main\n"),
            ],
        );
        let a = parse_advertisement(
            Service::UploadPack,
            Some("application/x-git-upload-pack-advertisement"),
            &body,
        )
        .unwrap();
        assert_eq!(a.refs, 2);
        assert_eq!(a.head.as_deref(), Some("refs/heads/main"));
    }

    #[test]
    fn a_login_page_or_the_wrong_service_is_not() {
        let html = b"<html><body>Log in</body></html>";
        let e = parse_advertisement(Service::UploadPack, Some("text/html"), html).unwrap_err();
        assert!(e.contains("text/html"), "{e}");
        // The right content type over something that is not pkt-line framed.
        let e = parse_advertisement(
            Service::UploadPack,
            Some("application/x-git-upload-pack-advertisement"),
            html,
        )
        .unwrap_err();
        assert!(e.contains("pkt-line"), "{e}");
        // An upload-pack advertisement where receive-pack was asked for.
        let body = advert("git-upload-pack", &[&format!("{ID} refs/heads/main\0\n")]);
        assert!(
            parse_advertisement(
                Service::ReceivePack,
                Some("application/x-git-receive-pack-advertisement"),
                &body
            )
            .is_err()
        );
        // No closing flush.
        let mut cut = advert("git-upload-pack", &[&format!("{ID} refs/heads/main\0\n")]);
        cut.truncate(cut.len() - 4);
        assert!(
            parse_advertisement(
                Service::UploadPack,
                Some("application/x-git-upload-pack-advertisement"),
                &cut
            )
            .is_err()
        );
    }

    #[test]
    fn an_empty_repository_has_no_refs() {
        let body = advert(
            "git-receive-pack",
            &[&format!(
                "{} capabilities^{{}}\0report-status\n",
                "0".repeat(40)
            )],
        );
        let a = parse_advertisement(
            Service::ReceivePack,
            Some("application/x-git-receive-pack-advertisement"),
            &body,
        )
        .unwrap();
        assert_eq!(a.refs, 0);
    }

    #[test]
    fn clone_links_of_both_flavours() {
        let cloud = serde_json::json!({"links": {"clone": [
            {"href": "https://amuniz@bitbucket.org/amuniz/test-repos.git", "name": "https"},
            {"href": "git@bitbucket.org:amuniz/test-repos.git", "name": "ssh"}]}});
        assert_eq!(
            clone_url(&cloud).as_deref(),
            Some("https://amuniz@bitbucket.org/amuniz/test-repos.git")
        );
        let dc = serde_json::json!({"links": {"clone": [
            {"href": "ssh://git@localhost:7999/amuniz/test-repos.git", "name": "ssh"},
            {"href": "http://localhost:7990/scm/amuniz/test-repos.git", "name": "http"}]}});
        assert_eq!(
            clone_url(&dc).as_deref(),
            Some("http://localhost:7990/scm/amuniz/test-repos.git")
        );
        assert_eq!(clone_url(&serde_json::json!({})), None);
    }
}
