//! One SSH connection: publickey authentication against the fixture's keys, one session
//! channel, one exec request answered as Bitbucket answers it, every request logged.

use std::sync::Arc;

use russh::keys::{HashAlg, PublicKey};
use russh::server::{
    Auth, ChannelOpenHandle, Handler, Msg, PublicKeyOffer, Session, VerifiedPublicKey,
};
use russh::{Channel, ChannelId, Pty, Sig};

use crate::fixture::Flavor;
use crate::git::{Progress, Service, Upload};
use crate::state::Shared;

use super::SshRt;
use super::answers::{self, Answer, ClientInput, Input};
use super::events::{ExecAnswer, SshAuth, SshEventKind};
use super::keys::Grant;

/// An advertisement sent, waiting for the client: its wants (upload-pack), its flush or EOF.
struct Waiting {
    channel: ChannelId,
    input: After,
}

/// What reads the client's input after the advertisement.
enum After {
    /// upload-pack: a flush alone ends it (ls-remote, bbconn); wants are answered with a pack.
    Upload(Box<Upload>),
    /// receive-pack: a flush alone ends it; anything pushed is refused.
    Receive(ClientInput),
}

pub(crate) struct Conn {
    shared: Arc<Shared>,
    rt: Arc<SshRt>,
    listener: usize,
    connection: u64,
    flavour: Flavor,
    /// What the authenticated key grants.
    grants: Vec<Grant>,
    waiting: Option<Waiting>,
}

impl Conn {
    pub(crate) fn new(
        shared: Arc<Shared>,
        rt: Arc<SshRt>,
        listener: usize,
        connection: u64,
        flavour: Flavor,
    ) -> Conn {
        Conn {
            shared,
            rt,
            listener,
            connection,
            flavour,
            grants: Vec::new(),
            waiting: None,
        }
    }

    fn log(&self, kind: SshEventKind) {
        let name = &self.shared.listeners[self.listener].name;
        self.rt.log.push(name, self.connection, kind);
    }

    /// What `key` grants to `user`: Cloud refuses every key to a user other than `git`. Data
    /// Center looks only at the key (not confirmed: its clone URLs say `git@` too).
    fn check(&self, user: &str, key: &PublicKey, algorithm: &str, signed: bool) -> Vec<Grant> {
        let grants = if self.flavour == Flavor::Cloud && user != "git" {
            Vec::new()
        } else {
            self.rt.index.grants(self.flavour, key)
        };
        self.log(SshEventKind::Auth(SshAuth {
            user: user.to_owned(),
            fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
            algorithm: algorithm.to_owned(),
            signed,
            accepted: !grants.is_empty(),
        }));
        grants
    }

    /// Exit status, EOF, close: how a command ends.
    fn finish(&mut self, session: &mut Session, channel: ChannelId, status: u32) {
        if self.waiting.as_ref().is_some_and(|w| w.channel == channel) {
            self.waiting = None;
        }
        // The client may have gone already; there is nobody left to tell then.
        let _ = session.exit_status_request(channel, status);
        let _ = session.eof(channel);
        let _ = session.close(channel);
    }

    /// A channel request the simulator refuses, logged first.
    fn refuse(
        &self,
        session: &mut Session,
        channel: ChannelId,
        request: &str,
        detail: Option<String>,
    ) -> Result<(), russh::Error> {
        self.log(SshEventKind::ChannelRequest {
            request: request.to_owned(),
            detail,
        });
        session.channel_failure(channel)
    }
}

fn reject() -> Auth {
    // No partial success, and the methods left are the configured ones: `publickey`.
    Auth::reject()
}

impl Handler for Conn {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        let grants = self.check(user, offer.public_key, offer.algorithm.as_str(), false);
        Ok(if grants.is_empty() {
            reject()
        } else {
            Auth::Accept
        })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let grants = self.check(user, key.public_key, key.algorithm.as_str(), true);
        if grants.is_empty() {
            return Ok(reject());
        }
        self.grants = grants;
        Ok(Auth::Accept)
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        // The callbacks below read the channel; a kept, unread Channel would fill and stall.
        drop(channel);
        reply.accept().await;
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let command = String::from_utf8_lossy(data).into_owned();
        let answer = answers::answer(&self.shared.fixture, self.flavour, &self.grants, &command);
        let logged = match &answer {
            Answer::Advertise { .. } => ExecAnswer::Advertised,
            Answer::Stdout(s) => ExecAnswer::Output(s.clone()),
            Answer::Stderr(s) => ExecAnswer::Refused((*s).to_owned()),
            Answer::NotRun => ExecAnswer::NotRun,
        };
        self.log(SshEventKind::Exec {
            command,
            answer: logged,
        });
        if self.waiting.is_some() {
            // One command per connection, as git runs it.
            session.channel_failure(channel)?;
            return Ok(());
        }
        match answer {
            Answer::NotRun => {
                session.channel_failure(channel)?;
                session.close(channel)?;
            }
            Answer::Advertise {
                refs,
                service,
                repo,
            } => {
                session.channel_success(channel)?;
                session.data(channel, refs)?;
                let input = match service {
                    Service::UploadPack => After::Upload(Box::new(Upload::new(repo, false))),
                    Service::ReceivePack => After::Receive(ClientInput::default()),
                };
                self.waiting = Some(Waiting { channel, input });
            }
            Answer::Stdout(text) => {
                session.channel_success(channel)?;
                session.data(channel, text.into_bytes())?;
                self.finish(session, channel, 0);
            }
            Answer::Stderr(text) => {
                session.channel_success(channel)?;
                session.extended_data(channel, 1, text.as_bytes().to_vec())?;
                self.finish(session, channel, 1);
            }
        }
        Ok(())
    }

    async fn data(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(w) = self.waiting.as_mut().filter(|w| w.channel == channel) else {
            return Ok(());
        };
        let status = match &mut w.input {
            After::Upload(u) => {
                let progress = u.push(data);
                let out = u.take_output();
                if !out.is_empty() {
                    session.data(channel, out)?;
                }
                match progress {
                    Progress::NeedMore => None,
                    Progress::Finished { ok: true } => Some(0),
                    // git's upload-pack dies after its ERR line, with git's exit status.
                    Progress::Finished { ok: false } => Some(128),
                }
            }
            After::Receive(input) => match input.push(data) {
                Input::NeedMore => None,
                Input::Flush { lines: 0 } => Some(0),
                Input::Flush { .. } | Input::Malformed => {
                    session.extended_data(channel, 1, answers::NOT_SERVED.as_bytes().to_vec())?;
                    Some(1)
                }
            },
        };
        if let Some(status) = status {
            self.finish(session, channel, status);
        }
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.waiting.as_ref().is_some_and(|w| w.channel == channel) {
            self.finish(session, channel, 0);
        }
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.waiting.as_ref().is_some_and(|w| w.channel == channel) {
            self.waiting = None;
        }
        Ok(())
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // git's GIT_PROTOCOL=version=2 is ignored: the answer is protocol v0, which git takes.
        self.log(SshEventKind::Env {
            name: name.to_owned(),
            value: value.to_owned(),
        });
        session.channel_failure(channel)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.refuse(session, channel, "shell", None)
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.refuse(session, channel, "subsystem", Some(name.to_owned()))
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.refuse(session, channel, "pty-req", Some(term.to_owned()))
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single_connection: bool,
        _x11_auth_protocol: &str,
        _x11_auth_cookie: &str,
        _x11_screen_number: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.refuse(session, channel, "x11-req", None)
    }

    async fn window_change_request(
        &mut self,
        channel: ChannelId,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.refuse(session, channel, "window-change", None)
    }

    async fn agent_request(
        &mut self,
        _channel: ChannelId,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        // russh answers the failure itself when this returns false.
        self.log(SshEventKind::ChannelRequest {
            request: "auth-agent-req@openssh.com".to_owned(),
            detail: None,
        });
        Ok(false)
    }

    async fn signal(
        &mut self,
        channel: ChannelId,
        signal: Sig,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.refuse(session, channel, "signal", Some(format!("{signal:?}")))
    }
}
