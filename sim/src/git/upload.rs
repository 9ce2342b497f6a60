//! `git-upload-pack` after its advertisement, protocol v0 (gitprotocol-pack.txt), for smart HTTP
//! (stateless: one request body, one answer) and SSH (one stream): the client's wants, shallow
//! and deepen lines, a flush, then haves and `done`; the answer is the shallow update when the
//! client asked for depth, `ACK`/`NAK` as git's upload-pack says them, and the pack, in
//! side-band framing when the client asked for it. The capabilities honoured are those the
//! advertisement offers (`git/mod.rs`): multi_ack(_detailed), side-band(-64k) and shallow; the
//! others need nothing of the server here (whole objects satisfy ofs-delta and thin-pack; there
//! is no annotated tag to include and no progress is ever written).
//!
//! A client that wants nothing (a flush alone: `ls-remote`, bbconn) ends the exchange with no
//! answer. A want of an object that is not the repository's commit is refused with an `ERR`
//! pkt-line, as git's `upload-pack: not our ref`.

use super::objects::{self, Oid, Repo};

/// The largest pkt-line, length included (gitprotocol-common.txt: 65520).
const MAX_PKT: usize = 65520;

/// What the exchange needs next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    NeedMore,
    /// The exchange is over: `ok` false after an `ERR` (git's upload-pack dies then).
    Finished {
        ok: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Wants,
    Haves,
    Finished { ok: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MultiAck {
    None,
    Basic,
    Detailed,
}

/// One upload-pack exchange: fed the client's bytes, it collects the answer.
pub(crate) struct Upload {
    /// None: an empty repository, whose every want is refused.
    repo: Option<Repo>,
    /// Smart HTTP: each request is a whole round, and a flush after haves ends it.
    stateless: bool,
    phase: Phase,
    /// Bytes of a pkt-line not yet complete.
    buf: Vec<u8>,
    wants: Vec<Oid>,
    /// Whether the first want line (which carries the capabilities) has been read.
    caps_read: bool,
    multi_ack: MultiAck,
    /// The largest pkt-line of the side-band the client chose, or None for a bare pack.
    band: Option<usize>,
    client_shallow: Vec<Oid>,
    depth: u32,
    /// The repository's commit, once the client said it has it.
    common: bool,
    out: Vec<u8>,
}

impl Upload {
    pub(crate) fn new(repo: Option<Repo>, stateless: bool) -> Upload {
        Upload {
            repo,
            stateless,
            phase: Phase::Wants,
            buf: Vec::new(),
            wants: Vec::new(),
            caps_read: false,
            multi_ack: MultiAck::None,
            band: None,
            client_shallow: Vec::new(),
            depth: 0,
            common: false,
            out: Vec::new(),
        }
    }

    /// Takes the answer collected so far.
    pub(crate) fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Feeds the client's bytes; every complete pkt-line is acted on.
    pub(crate) fn push(&mut self, data: &[u8]) -> Progress {
        if let Phase::Finished { ok } = self.phase {
            return Progress::Finished { ok };
        }
        self.buf.extend_from_slice(data);
        let mut at = 0;
        let progress = loop {
            let Some(head) = self.buf.get(at..at + 4) else {
                break Progress::NeedMore;
            };
            let Some(len) = std::str::from_utf8(head)
                .ok()
                .and_then(|h| usize::from_str_radix(h, 16).ok())
            else {
                break self.fail("protocol error: bad line length character");
            };
            let line = match len {
                0 => None,
                // 0001 and 0002 are protocol v2's delimiter and response end: not v0.
                1..=4 => break self.fail(&format!("protocol error: bad line length {len}")),
                _ if len > MAX_PKT => {
                    break self.fail(&format!("protocol error: bad line length {len}"));
                }
                _ => match self.buf.get(at + 4..at + len) {
                    Some(l) => Some(l.to_vec()),
                    None => break Progress::NeedMore,
                },
            };
            at += len.max(4);
            let p = match line {
                None => self.flush(),
                Some(l) => {
                    let text = String::from_utf8_lossy(&l);
                    self.line(text.strip_suffix('\n').unwrap_or(&text))
                }
            };
            if p != Progress::NeedMore {
                break p;
            }
        };
        self.buf.drain(..at.min(self.buf.len()));
        progress
    }

    /// The client's input ended (the HTTP body, or EOF over SSH): whatever was asked is answered.
    pub(crate) fn end(&mut self) -> Progress {
        let ok = match self.phase {
            Phase::Finished { ok } => ok,
            // A stateless round without `done` (or a client that hung up): nothing more to say.
            Phase::Wants | Phase::Haves => true,
        };
        self.phase = Phase::Finished { ok };
        Progress::Finished { ok }
    }

    fn line(&mut self, line: &str) -> Progress {
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        match (self.phase, word) {
            (Phase::Wants, "want") => {
                // The first want carries the capabilities after the id.
                let (id, caps) = rest.split_once(' ').unwrap_or((rest, ""));
                let Some(id) = objects::parse_hex(id) else {
                    return self.fail(&format!(
                        "protocol error, expected to get object ID, not '{line}'"
                    ));
                };
                if !self.caps_read {
                    self.caps_read = true;
                    self.capabilities(caps);
                }
                self.wants.push(id);
                Progress::NeedMore
            }
            (Phase::Wants, "shallow") => match objects::parse_hex(rest) {
                Some(id) => {
                    self.client_shallow.push(id);
                    Progress::NeedMore
                }
                None => self.fail(&format!("invalid shallow line: {line}")),
            },
            (Phase::Wants, "deepen") => match rest.parse::<u32>() {
                Ok(d) if d > 0 => {
                    self.depth = d;
                    Progress::NeedMore
                }
                _ => self.fail(&format!("invalid deepen: {rest}")),
            },
            (Phase::Haves, "have") => {
                let Some(id) = objects::parse_hex(rest) else {
                    return self.fail(&format!(
                        "protocol error, expected to get object ID, not '{line}'"
                    ));
                };
                if self.repo.as_ref().is_some_and(|r| r.commit() == id) {
                    let first = !self.common;
                    self.common = true;
                    let h = objects::hex(&id);
                    match self.multi_ack {
                        MultiAck::Detailed => self.pkt(&format!("ACK {h} common\n")),
                        MultiAck::Basic => self.pkt(&format!("ACK {h} continue\n")),
                        // Without multi_ack git acknowledges the first common object only.
                        MultiAck::None if first => self.pkt(&format!("ACK {h}\n")),
                        MultiAck::None => {}
                    }
                }
                Progress::NeedMore
            }
            (Phase::Haves, "done") => {
                match (self.common, self.repo.as_ref()) {
                    (true, Some(r)) if self.multi_ack != MultiAck::None => {
                        let h = objects::hex(&r.commit());
                        self.pkt(&format!("ACK {h}\n"));
                    }
                    (true, _) => {}
                    (false, _) => self.pkt("NAK\n"),
                }
                self.send_pack();
                self.phase = Phase::Finished { ok: true };
                Progress::Finished { ok: true }
            }
            // deepen-since, deepen-not and filter are not advertised, so not expected either.
            _ => self.fail(&format!("protocol error, unexpected '{line}'")),
        }
    }

    fn flush(&mut self) -> Progress {
        match self.phase {
            Phase::Wants => {
                if self.wants.is_empty() {
                    // ls-remote and bbconn: nothing wanted, nothing sent.
                    self.phase = Phase::Finished { ok: true };
                    return Progress::Finished { ok: true };
                }
                let ours = self.repo.as_ref().map(Repo::commit);
                let theirs = self.wants.iter().find(|w| Some(**w) != ours);
                if let Some(h) = theirs.map(objects::hex) {
                    return self.fail(&format!("upload-pack: not our ref {h}"));
                }
                self.shallow_update();
                self.phase = Phase::Haves;
                Progress::NeedMore
            }
            Phase::Haves => {
                if !self.common || self.multi_ack != MultiAck::None {
                    self.pkt("NAK\n");
                }
                if self.stateless {
                    // Each smart-HTTP request is one round; the next repeats the wants.
                    self.phase = Phase::Finished { ok: true };
                    return Progress::Finished { ok: true };
                }
                Progress::NeedMore
            }
            Phase::Finished { ok } => Progress::Finished { ok },
        }
    }

    fn capabilities(&mut self, caps: &str) {
        for c in caps.split_ascii_whitespace() {
            match c {
                "multi_ack_detailed" => self.multi_ack = MultiAck::Detailed,
                "multi_ack" if self.multi_ack == MultiAck::None => self.multi_ack = MultiAck::Basic,
                "side-band-64k" => self.band = Some(MAX_PKT),
                // side-band's packets are at most 1000 bytes.
                "side-band" if self.band.is_none() => self.band = Some(1000),
                _ => {}
            }
        }
    }

    /// The shallow update that answers a depth (or the client's own shallow commits): git marks
    /// a wanted commit shallow at depth 1 even when it has no parents, and the repository's one
    /// commit is whole at any larger depth.
    fn shallow_update(&mut self) {
        if self.depth == 0 && self.client_shallow.is_empty() {
            return;
        }
        if let Some(id) = self.repo.as_ref().map(Repo::commit) {
            let was_shallow = self.client_shallow.contains(&id);
            let h = objects::hex(&id);
            if self.depth == 1 && !was_shallow {
                self.pkt(&format!("shallow {h}\n"));
            } else if self.depth > 1 && was_shallow {
                self.pkt(&format!("unshallow {h}\n"));
            }
        }
        self.out.extend_from_slice(b"0000");
    }

    /// The pack of what the client lacks: nothing when it has the commit already.
    fn send_pack(&mut self) {
        let pack = match (&self.repo, self.common) {
            (Some(r), false) => objects::pack(&r.objects()),
            _ => objects::pack(&[]),
        };
        let Some(max) = self.band else {
            self.out.extend_from_slice(&pack);
            return;
        };
        // Band 1 carries the pack; each packet's data leaves room for length and band byte.
        for chunk in pack.chunks(max - 5) {
            self.out
                .extend_from_slice(format!("{:04x}", chunk.len() + 5).as_bytes());
            self.out.push(1);
            self.out.extend_from_slice(chunk);
        }
        self.out.extend_from_slice(b"0000");
    }

    fn fail(&mut self, message: &str) -> Progress {
        self.pkt(&format!("ERR {message}\n"));
        self.phase = Phase::Finished { ok: false };
        Progress::Finished { ok: false }
    }

    fn pkt(&mut self, data: &str) {
        super::pkt(&mut self.out, data);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn lines(ls: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for l in ls {
            if l.is_empty() {
                out.extend_from_slice(b"0000");
            } else {
                super::super::pkt(&mut out, l);
            }
        }
        out
    }

    fn repo() -> (Repo, String) {
        let r = Repo::new("acme/app");
        let h = objects::hex(&r.commit());
        (r, h)
    }

    #[test]
    fn a_flush_alone_ends_quietly() {
        let mut u = Upload::new(Some(repo().0), false);
        assert_eq!(u.push(b"00"), Progress::NeedMore);
        assert_eq!(u.push(b"00"), Progress::Finished { ok: true });
        assert!(u.take_output().is_empty());
    }

    #[test]
    fn clone_with_side_band_64k() {
        let (r, h) = repo();
        let mut u = Upload::new(Some(r.clone()), true);
        let req = lines(&[
            &format!("want {h} multi_ack_detailed side-band-64k ofs-delta agent=git/2.39\n"),
            &format!("want {h}\n"),
            "",
            "done\n",
        ]);
        assert_eq!(u.push(&req), Progress::Finished { ok: true });
        let out = u.take_output();
        let pack = objects::pack(&r.objects());
        let mut want = b"0008NAK\n".to_vec();
        want.extend_from_slice(format!("{:04x}\x01", pack.len() + 5).as_bytes());
        want.extend_from_slice(&pack);
        want.extend_from_slice(b"0000");
        assert_eq!(out, want);
    }

    #[test]
    fn bare_pack_and_shallow_over_a_stream() {
        let (r, h) = repo();
        let mut u = Upload::new(Some(r.clone()), false);
        let req = lines(&[&format!("want {h} ofs-delta\n"), "deepen 1\n", ""]);
        // Byte by byte, as a stream may deliver it.
        for b in &req[..req.len() - 1] {
            assert_eq!(u.push(&[*b]), Progress::NeedMore);
        }
        assert_eq!(u.push(&req[req.len() - 1..]), Progress::NeedMore);
        assert_eq!(
            u.take_output(),
            lines(&[&format!("shallow {h}\n"), ""]),
            "the shallow update comes before the haves"
        );
        assert_eq!(u.push(&lines(&["done\n"])), Progress::Finished { ok: true });
        let mut want = b"0008NAK\n".to_vec();
        want.extend_from_slice(&objects::pack(&r.objects()));
        assert_eq!(u.take_output(), want);
    }

    #[test]
    fn a_stateless_round_without_done_is_nak_only() {
        let (r, h) = repo();
        let other = "1".repeat(40);
        let mut u = Upload::new(Some(r), true);
        let req = lines(&[
            &format!("want {h} multi_ack_detailed side-band-64k\n"),
            "",
            &format!("have {other}\n"),
            "",
        ]);
        assert_eq!(u.push(&req), Progress::Finished { ok: true });
        assert_eq!(u.take_output(), b"0008NAK\n");
        // The first round of a shallow stateless fetch: wants and depth, then the body ends.
        let (r, h) = repo();
        let mut u = Upload::new(Some(r), true);
        assert_eq!(
            u.push(&lines(&[&format!("want {h}\n"), "deepen 1\n", ""])),
            Progress::NeedMore
        );
        assert_eq!(u.end(), Progress::Finished { ok: true });
        assert_eq!(u.take_output(), lines(&[&format!("shallow {h}\n"), ""]));
    }

    #[test]
    fn a_common_commit_gets_an_empty_pack() {
        let (r, h) = repo();
        let mut u = Upload::new(Some(r), false);
        let req = lines(&[
            &format!("want {h} multi_ack_detailed side-band\n"),
            "",
            &format!("have {h}\n"),
            "done\n",
        ]);
        assert_eq!(u.push(&req), Progress::Finished { ok: true });
        let mut want = lines(&[&format!("ACK {h} common\n"), &format!("ACK {h}\n")]);
        want.extend_from_slice(b"0025\x01");
        want.extend_from_slice(&objects::pack(&[]));
        want.extend_from_slice(b"0000");
        assert_eq!(u.take_output(), want);
    }

    #[test]
    fn refusals_are_err_lines() {
        let other = "ab".repeat(20);
        let mut u = Upload::new(Some(repo().0), true);
        let req = lines(&[&format!("want {other} side-band-64k\n"), "", "done\n"]);
        assert_eq!(u.push(&req), Progress::Finished { ok: false });
        assert_eq!(
            u.take_output(),
            lines(&[&format!("ERR upload-pack: not our ref {other}\n")])
        );
        // An empty repository has nothing to want.
        let mut u = Upload::new(None, false);
        assert_eq!(
            u.push(&lines(&[&format!("want {other}\n"), ""])),
            Progress::Finished { ok: false }
        );
        for bad in [&b"zzzz"[..], b"0001", b"0004", b"fff1"] {
            let mut u = Upload::new(Some(repo().0), false);
            assert_eq!(u.push(bad), Progress::Finished { ok: false }, "{bad:?}");
            assert!(u.take_output().starts_with(b"00"), "{bad:?}");
        }
        let mut u = Upload::new(Some(repo().0), false);
        assert_eq!(
            u.push(&lines(&["deepen-since 1\n"])),
            Progress::Finished { ok: false }
        );
    }
}
