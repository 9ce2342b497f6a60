//! Who is calling Bitbucket Data Center: a password or personal token in Basic, any token as
//! Bearer, or nobody; with token expiry and revocation, Bitbucket 10's anonymous service of
//! unrecognised tokens and refusal of Basic passwords, failed logins and the CAPTCHA they lead
//! to, and the web pages' login check.

use crate::fixture::{DataCenter, DcToken, DcTokenKind, DcUser};
use crate::http::{self as h, Credential, Req, Resp, parse_authorization};
use crate::state::{Shared, lock, now_ms};

use super::answers::{
    AUTH_FAILED_EXCEPTION, TOKEN_EXPIRED, auth_failed, basic_disabled, captcha_required, errors,
};

const DAY_MS: i64 = 86_400_000;

fn is_expired(t: &DcToken, now: i64, started: i64) -> bool {
    t.expired
        || t.expiry_days
            .is_some_and(|d| created_ms(t, started) + i64::from(d) * DAY_MS <= now)
}

pub(super) fn created_ms(t: &DcToken, started: i64) -> i64 {
    t.created_date
        .map(|c| c.as_millisecond())
        .unwrap_or(started - DAY_MS)
}

/// Who is calling.
#[derive(Clone, Copy)]
pub(super) enum Principal<'a> {
    Anonymous,
    Password(&'a DcUser),
    Personal(&'a DcUser, &'a DcToken),
    /// Project and repository tokens act as a bot user of their own.
    Token(usize, &'a DcToken),
}

impl<'a> Principal<'a> {
    pub(super) fn user(&self) -> Option<&'a DcUser> {
        match self {
            Principal::Password(u) | Principal::Personal(u, _) => Some(u),
            _ => None,
        }
    }
}

pub(super) fn user_id(dc: &DataCenter, u: &DcUser) -> u32 {
    u.id.unwrap_or_else(|| {
        dc.users
            .iter()
            .position(|x| std::ptr::eq(x, u))
            .map(|i| i as u32 + 1)
            .unwrap_or(1)
    })
}

/// The bot user a project or repository token acts as. Bitbucket creates one per token; its
/// real naming is not documented, so the simulator names it after the token's resource.
pub(super) fn bot_name(t: &DcToken) -> String {
    let key = t.project.as_deref().unwrap_or("");
    match t.kind {
        DcTokenKind::Repository => format!(
            "repository-token-{key}-{}",
            t.repository.as_deref().unwrap_or("")
        ),
        _ => format!("project-token-{key}"),
    }
}

pub(super) fn bot_id(index: usize) -> u32 {
    100_000 + index as u32
}

pub(super) fn authenticate<'a>(
    shared: &'a Shared,
    req: &Req,
    base: &str,
) -> Result<Principal<'a>, Resp> {
    let dc = &shared.fixture.datacenter;
    let Some(value) = req.authorization() else {
        return Ok(Principal::Anonymous);
    };
    let now = now_ms();
    let started = shared.dc.started_ms;
    let check = |i: usize, t: &DcToken| -> Result<(), Resp> {
        if t.revoked {
            return Err(auth_failed());
        }
        if is_expired(t, now, started) {
            return Err(if dc.expired_token_message {
                errors(401, TOKEN_EXPIRED, Some(AUTH_FAILED_EXCEPTION))
            } else {
                auth_failed()
            });
        }
        lock(&shared.dc.last_auth).insert(i, now);
        Ok(())
    };
    match parse_authorization(value) {
        // Any token kind works as Bearer (confluence.atlassian.com/bitbucketserver091/http-access-tokens-1443038354.html).
        Credential::Bearer(value) => {
            let bearer = || -> Result<Principal<'a>, Resp> {
                let Some((i, t)) = dc.tokens.iter().enumerate().find(|(_, t)| t.value == value)
                else {
                    return Err(auth_failed());
                };
                check(i, t)?;
                match t.kind {
                    DcTokenKind::Personal => {
                        let user = t
                            .user
                            .as_deref()
                            .and_then(|n| dc.users.iter().find(|u| u.name.eq_ignore_ascii_case(n)));
                        user.map(|u| Principal::Personal(u, t))
                            .ok_or_else(auth_failed)
                    }
                    _ => Ok(Principal::Token(i, t)),
                }
            };
            // tests/real-answers/answers.json `dc-appprops-200-anonymous-10.4`: Bitbucket 10
            // does not refuse a token it does not recognise; it serves the request as anonymous.
            match bearer() {
                Err(_) if dc.serves_unrecognised_tokens_anonymously() => Ok(Principal::Anonymous),
                other => other,
            }
        }
        // Basic: a personal token of that user (project and repository tokens are Bearer only),
        // else the user's password.
        Credential::Basic { user, password } => {
            let Some(u) = dc.users.iter().find(|u| u.name.eq_ignore_ascii_case(&user)) else {
                return Err(if dc.basic_disabled() {
                    basic_disabled()
                } else {
                    auth_failed()
                });
            };
            let slug = u.slug();
            // Once over the threshold, even the right password is refused until a CAPTCHA is
            // solved on the web page (support.atlassian.com/bitbucket-data-center/kb/how-to-identify-and-reset-all-the-users-blocked-by-captcha-in-bitbucket-server-and-datacenter).
            if shared.dc.captcha_on(dc, &slug) {
                return Err(captcha_required(base));
            }
            let personal = dc.tokens.iter().enumerate().find(|(_, t)| {
                t.kind == DcTokenKind::Personal
                    && t.user
                        .as_deref()
                        .is_some_and(|n| n.eq_ignore_ascii_case(&u.name))
                    && t.value == password
            });
            if let Some((i, t)) = personal {
                if let Err(r) = check(i, t) {
                    shared.dc.failed(&slug);
                    return Err(r);
                }
                shared.dc.succeeded(&slug);
                return Ok(Principal::Personal(u, t));
            }
            // Blocking Basic authentication refuses passwords; a personal token in Basic is not a
            // password (not confirmed: Atlassian documents only the password case).
            if dc.basic_disabled() {
                return Err(basic_disabled());
            }
            if u.password.as_deref() == Some(password.as_str()) {
                shared.dc.succeeded(&slug);
                Ok(Principal::Password(u))
            } else {
                shared.dc.failed(&slug);
                Err(auth_failed())
            }
        }
        Credential::Malformed => Err(auth_failed()),
    }
}

/// The name the rate limiter keys on.
pub(super) fn principal_key(p: &Principal) -> Option<String> {
    match p {
        Principal::Anonymous => None,
        Principal::Password(u) | Principal::Personal(u, _) => Some(u.slug()),
        Principal::Token(_, t) => Some(bot_name(t)),
    }
}

/// A path below the context path that is neither `/rest` nor `/scm`: a web page.
/// support.atlassian.com/bitbucket-data-center/kb/access-tokens-no-longer-work-as-expected-after-upgrading-bitbucket-data-center:
/// an access token in the Authorization header is redirected (302) to the login page; Basic with
/// a token instead of the password is 401, and counts as a failed login.
pub(crate) fn web(shared: &Shared, req: &Req) -> Resp {
    let dc = &shared.fixture.datacenter;
    let base = format!(
        "{}{}",
        req.origin(),
        shared.listeners[req.listener].base_path
    );
    let to_login = || {
        let mut r = h::bytes(302, "text/html;charset=UTF-8", "");
        h::set_header(&mut r, "location", &format!("{base}/login"));
        r
    };
    match req.authorization().map(parse_authorization) {
        Some(Credential::Basic { user, password }) => {
            if dc.basic_disabled() {
                return basic_disabled();
            }
            let Some(u) = dc.users.iter().find(|u| u.name.eq_ignore_ascii_case(&user)) else {
                return auth_failed();
            };
            let slug = u.slug();
            if shared.dc.captcha_on(dc, &slug) {
                return captcha_required(&base);
            }
            if u.password.as_deref() == Some(password.as_str()) {
                shared.dc.succeeded(&slug);
                h::bytes(
                    404,
                    "text/html;charset=UTF-8",
                    "<html><body>Page not found</body></html>",
                )
            } else {
                shared.dc.failed(&slug);
                auth_failed()
            }
        }
        _ => to_login(),
    }
}
