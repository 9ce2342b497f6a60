//! What a git command over SSH is answered: the command line parsed as git and Bitbucket's
//! wrappers send it, the flavours' refusal texts, and receive-pack's input after the
//! advertisement (a flush, or a push the simulator never accepts). upload-pack's input is
//! `git::Upload`'s, as over smart HTTP.

use crate::fixture::{Fixture, Flavor};
use crate::git::{self, Service};

use super::access::{self, CloudRefusal, DcRefusal};
use super::keys::Grant;

// Bitbucket Cloud's texts (the brief's facts; each ends in a newline, as conq prints them).
const CLOUD_NO_REPO: &str = "conq: repository does not exist.\n";
const CLOUD_DENIED: &str = "conq: repository access denied.\n";
const CLOUD_DEPLOY_READ_ONLY: &str =
    "conq: repository access denied. access via a deployment key is read-only.\n";
/// Not confirmed: what conq says to a command other than git's.
const CLOUD_BAD_COMMAND: &str = "conq: invalid command syntax.\n";
/// Data Center, for a missing repository and for one the key may not read alike.
const DC_NOT_FOUND: &str = "Repository not found\nThe requested repository does not exist, or you do not have permission to access it.\n";
/// Data Center, for a push without write permission. The wording is not confirmed: it is the
/// REST API's AuthorisationException message, which the SSH refusal is taken to reuse.
const DC_NOT_PERMITTED: &str = "You are not permitted to access this resource\n";
/// The simulator's own: nothing is pushed to it, and it makes no archives.
pub(crate) const NOT_SERVED: &str =
    "bbconn-sim: no push is accepted and no archive is made; only git-upload-pack sends a pack.\n";

/// How an exec request is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The ref advertisement on stdout; then the client's wants (upload-pack) or flush.
    Advertise {
        refs: Vec<u8>,
        service: Service,
        /// The repository's objects, for upload-pack's pack; None when it has no commits.
        repo: Option<git::Repo>,
    },
    /// Text on stdout, exit status 0 (`whoami`).
    Stdout(String),
    /// Text on stderr, exit status 1.
    Stderr(&'static str),
    /// The exec request itself refused (Data Center, a command it does not run).
    NotRun,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Command {
    Git(Service, String),
    /// `git archive-pack` / `git-upload-archive` (Data Center only).
    Archive(String),
    Whoami,
    Other,
}

/// The words of a command line, unquoted as a POSIX shell would (git quotes the path with
/// single quotes, `'` itself as `'\''`). None: an unterminated quote.
fn words(line: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => out.extend(cur.take()),
            '\'' => {
                let w = cur.get_or_insert_with(String::new);
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => w.push(c),
                    }
                }
            }
            '"' => {
                let w = cur.get_or_insert_with(String::new);
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => w.push(chars.next()?),
                        c => w.push(c),
                    }
                }
            }
            '\\' => cur.get_or_insert_with(String::new).push(chars.next()?),
            c => cur.get_or_insert_with(String::new).push(c),
        }
    }
    out.extend(cur);
    Some(out)
}

fn parse(line: &str) -> Command {
    let Some(w) = words(line) else {
        return Command::Other;
    };
    let w: Vec<&str> = w.iter().map(String::as_str).collect();
    match w.as_slice() {
        ["git-upload-pack", p] | ["git", "upload-pack", p] => {
            Command::Git(Service::UploadPack, (*p).to_owned())
        }
        ["git-receive-pack", p] | ["git", "receive-pack", p] => {
            Command::Git(Service::ReceivePack, (*p).to_owned())
        }
        ["git-archive-pack" | "git-upload-archive", p]
        | ["git", "archive-pack" | "upload-archive", p] => Command::Archive((*p).to_owned()),
        ["whoami"] => Command::Whoami,
        _ => Command::Other,
    }
}

/// `owner/slug` of a repository path: with or without a leading `/` and `.git`.
pub(crate) fn repo_path(path: &str) -> Option<(String, String)> {
    let p = path.trim_start_matches('/').trim_end_matches('/');
    let (owner, slug) = p.split_once('/')?;
    let slug = slug.strip_suffix(".git").unwrap_or(slug);
    (!owner.is_empty() && !slug.is_empty() && !slug.contains('/'))
        .then(|| (owner.to_owned(), slug.to_owned()))
}

/// The answer to `line` from a key with `grants` on a listener of `flavour`.
pub(crate) fn answer(f: &Fixture, flavour: Flavor, grants: &[Grant], line: &str) -> Answer {
    match flavour {
        Flavor::Cloud => cloud(f, grants, parse(line)),
        Flavor::Datacenter => dc(f, grants, parse(line)),
    }
}

fn cloud(f: &Fixture, grants: &[Grant], cmd: Command) -> Answer {
    let Command::Git(service, path) = cmd else {
        return Answer::Stderr(CLOUD_BAD_COMMAND);
    };
    let Some((ws, slug)) = repo_path(&path) else {
        return Answer::Stderr(CLOUD_NO_REPO);
    };
    let push = service == Service::ReceivePack;
    match access::cloud(f, grants, &ws, &slug, push) {
        Err(CloudRefusal::NoSuchRepository) => Answer::Stderr(CLOUD_NO_REPO),
        Err(CloudRefusal::AccessDenied) => Answer::Stderr(CLOUD_DENIED),
        Err(CloudRefusal::DeployKeyReadOnly) => Answer::Stderr(CLOUD_DEPLOY_READ_ONLY),
        Ok(()) => advertise(service, git::cloud_served(f, &ws, &slug)),
    }
}

fn dc(f: &Fixture, grants: &[Grant], cmd: Command) -> Answer {
    let (service, path) = match cmd {
        Command::Git(service, path) => (Some(service), path),
        Command::Archive(path) => (None, path),
        Command::Whoami => {
            // Not confirmed for access keys, which have no user: nothing is printed for them.
            let name = access::dc_user(f, grants)
                .map(|u| format!("{}\n", u.name))
                .unwrap_or_default();
            return Answer::Stdout(name);
        }
        Command::Other => return Answer::NotRun,
    };
    let Some((key, slug)) = repo_path(&path) else {
        return Answer::Stderr(DC_NOT_FOUND);
    };
    let push = service == Some(Service::ReceivePack);
    match access::dc(f, grants, &key, &slug, push) {
        Err(DcRefusal::NotFound) => Answer::Stderr(DC_NOT_FOUND),
        Err(DcRefusal::NotPermitted) => Answer::Stderr(DC_NOT_PERMITTED),
        Ok(()) => {
            let Some(service) = service else {
                return Answer::Stderr(NOT_SERVED);
            };
            advertise(service, git::dc_served(f, &key, &slug))
        }
    }
}

fn advertise(service: Service, served: Option<git::Served>) -> Answer {
    Answer::Advertise {
        refs: git::refs_advertisement(service, served.as_ref()),
        service,
        repo: served.map(|s| s.repo),
    }
}

/// receive-pack's client pkt-lines after the advertisement.
#[derive(Default)]
pub(crate) struct ClientInput {
    buf: Vec<u8>,
    lines: usize,
}

/// Where the client's input stands.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Input {
    NeedMore,
    /// A flush: with no line before it, the client pushes nothing (push --dry-run).
    Flush {
        lines: usize,
    },
    /// Not pkt-lines, or more than the simulator keeps.
    Malformed,
}

impl ClientInput {
    pub(crate) fn push(&mut self, data: &[u8]) -> Input {
        self.buf.extend_from_slice(data);
        loop {
            let Some(head) = self.buf.get(..4) else {
                return Input::NeedMore;
            };
            let Some(len) = std::str::from_utf8(head)
                .ok()
                .and_then(|h| usize::from_str_radix(h, 16).ok())
            else {
                return Input::Malformed;
            };
            if len == 0 {
                return Input::Flush { lines: self.lines };
            }
            if len < 4 {
                return Input::Malformed;
            }
            if self.buf.len() < len {
                return if self.buf.len() > 1 << 16 {
                    Input::Malformed
                } else {
                    Input::NeedMore
                };
            }
            self.buf.drain(..len);
            self.lines += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_spellings() {
        assert_eq!(
            parse("git-upload-pack '/acme/app.git'"),
            Command::Git(Service::UploadPack, "/acme/app.git".into())
        );
        assert_eq!(
            parse("git receive-pack 'acme/app'"),
            Command::Git(Service::ReceivePack, "acme/app".into())
        );
        assert_eq!(
            parse(r"git-upload-pack 'it'\''s/x.git'"),
            Command::Git(Service::UploadPack, "it's/x.git".into())
        );
        assert_eq!(parse("whoami"), Command::Whoami);
        assert_eq!(parse("git-upload-pack 'unterminated"), Command::Other);
        assert_eq!(parse("ls -la"), Command::Other);
        assert_eq!(
            parse("git archive-pack '/PROJ/app.git'"),
            Command::Archive("/PROJ/app.git".into())
        );
    }

    #[test]
    fn repository_paths() {
        let want = Some(("acme".to_owned(), "app".to_owned()));
        assert_eq!(repo_path("/acme/app.git"), want);
        assert_eq!(repo_path("acme/app"), want);
        assert_eq!(repo_path("acme/app.git/"), want);
        assert_eq!(
            repo_path("~alice/dots.git"),
            Some(("~alice".into(), "dots".into()))
        );
        assert_eq!(repo_path("app.git"), None);
        assert_eq!(repo_path("a/b/c.git"), None);
    }

    #[test]
    fn client_input() {
        let mut i = ClientInput::default();
        assert_eq!(i.push(b"00"), Input::NeedMore);
        assert_eq!(i.push(b"00"), Input::Flush { lines: 0 });
        let mut i = ClientInput::default();
        assert_eq!(i.push(b"0009want\n000"), Input::NeedMore);
        assert_eq!(i.push(b"0"), Input::Flush { lines: 1 });
        assert_eq!(ClientInput::default().push(b"zzzz"), Input::Malformed);
    }
}
