//! Authenticated: Bitbucket accepts the credential. Decided from the identity probe's answer
//! (Cloud `GET /2.0/user`, Data Center `application-properties`) or the token endpoint's.

use super::{CheckResult, Finding};
use crate::api::AuthMethod;
use crate::bitbucket::cloud::UserAnswer;
use crate::bitbucket::datacenter::{APPLICATION_PROPERTIES, WhoAmI};
use crate::bitbucket::oauth::TokenAnswer;
use crate::catalogue::{Cause, Check};
use std::time::Duration;

/// App passwords are refused before anything is sent: Bitbucket Cloud removed them for good on
/// 2026-07-28 (Atlassian community announcements 3040975, 3106901, 3237429).
pub fn app_password() -> Finding {
    Finding::new(
        Cause::AppPasswordRetired,
        "Bitbucket Cloud no longer accepts app passwords (removed on 2026-07-28); bbconn did not send it",
    )
}

pub fn cloud(method: AuthMethod, base: &str, answer: &UserAnswer) -> Result<(), Finding> {
    let probe = format!("GET {base}/user");
    match answer {
        // A scope-missing 403 lists what the credential holds: Bitbucket knows it.
        UserAnswer::Accepted { .. } | UserAnswer::ScopeMissing { .. } => Ok(()),
        UserAnswer::Rejected { message, challenge } => {
            let answered =
                format!("Bitbucket Cloud answered 401 Unauthorized to {probe}: {message}");
            Err(if message.starts_with("Access token expired") {
                // Cloud's generic text ("Token is invalid, expired, or not supported ...") names
                // no cause; this one does (tests/real-answers: cloud-401-access-token-expired).
                Finding::new(Cause::TokenExpired, answered)
            } else {
                match method {
                    AuthMethod::Basic => Finding::new(
                        Cause::CredentialsRejected,
                        format!(
                            "{answered} (Cloud accepts no account passwords over its API; use an API token)"
                        ),
                    ),
                    AuthMethod::ApiToken if challenge.is_some() => Finding::new(
                        Cause::TokenRevoked,
                        format!(
                            "{answered} (the token is revoked or expired, or the username is not the account's email)"
                        ),
                    ),
                    _ => Finding::new(Cause::TokenRevoked, answered),
                }
            })
        }
        UserAnswer::Forbidden { message } if !base.trim_end_matches('/').ends_with("/2.0") => {
            Err(Finding::new(
                Cause::NotBitbucketApi,
                format!(
                    "Bitbucket Cloud answered 403 to {probe}: {message}; the API lives under /2.0 (https://api.bitbucket.org/2.0), which spec.url lacks"
                ),
            ))
        }
        UserAnswer::Forbidden { message } => Err(Finding::new(
            Cause::UnexpectedResponse,
            format!("Bitbucket Cloud answered 403 to {probe} without naming a scope: {message}"),
        )),
        UserAnswer::NoApi { message } => Err(Finding::new(
            Cause::NotBitbucketApi,
            format!("{probe} answered 404 ({message}): there is no Bitbucket API at spec.url"),
        )),
    }
}

/// Data Center's identity answer. `declared_expired`: the Secret's bbconn.dev/expires-at is
/// past, which tells an expired token from a revoked one where Bitbucket's answer cannot.
pub fn datacenter(
    method: AuthMethod,
    base: &str,
    answer: &WhoAmI,
    declared_expired: bool,
) -> Result<(), Finding> {
    let probe = format!("GET {base}{APPLICATION_PROPERTIES}");
    let unrecognised = |text: String| {
        if method == AuthMethod::Basic {
            Finding::new(Cause::CredentialsRejected, text)
        } else if declared_expired {
            Finding::new(
                Cause::TokenExpired,
                format!("{text}; the Secret's bbconn.dev/expires-at has passed"),
            )
        } else {
            Finding::new(Cause::TokenRevoked, text)
        }
    };
    match answer {
        WhoAmI::Accepted { .. } => Ok(()),
        WhoAmI::Anonymous { .. } => Err(unrecognised(format!(
            "Bitbucket served {probe} as anonymous (200 without X-AUSERNAME): it did not recognise the credential (Data Center 10 answers so for a revoked, expired or mistyped token)"
        ))),
        WhoAmI::Rejected {
            exception,
            message,
            denied_reason,
        } => {
            let text = format!(
                "Bitbucket answered 401 Unauthorized to {probe}: {message}{}",
                if exception.is_empty() {
                    String::new()
                } else {
                    format!(" ({exception})")
                }
            );
            let captcha = exception.contains("CaptchaRequired")
                || denied_reason
                    .as_deref()
                    .is_some_and(|r| r.to_ascii_uppercase().contains("CAPTCHA"));
            Err(if captcha {
                Finding::new(
                    Cause::CaptchaRequired,
                    format!(
                        "{text}: Bitbucket demands a CAPTCHA for this user after failed logins; bbconn will not send the credential again until it changes"
                    ),
                )
            } else if method != AuthMethod::Basic
                && !declared_expired
                && message.to_ascii_lowercase().contains("expired")
            {
                // Not confirmed in Atlassian's docs whether an expired token's 401 says so; when it
                // does, say TokenExpired.
                Finding::new(Cause::TokenExpired, text)
            } else {
                unrecognised(text)
            })
        }
        WhoAmI::Forbidden { exception, message } => {
            let lower = message.to_ascii_lowercase();
            Err(
                if lower.contains("basic authentication") && lower.contains("disabled") {
                    Finding::new(
                        Cause::BasicAuthDisabled,
                        format!("Bitbucket answered 403 Forbidden to {probe}: {message}"),
                    )
                } else {
                    Finding::new(
                        Cause::UnexpectedResponse,
                        format!(
                            "Bitbucket answered 403 Forbidden to {probe}: {message}{}",
                            if exception.is_empty() {
                                String::new()
                            } else {
                                format!(" ({exception})")
                            }
                        ),
                    )
                },
            )
        }
        WhoAmI::NotBitbucket { status, message } => Err(Finding::new(
            Cause::NotBitbucketApi,
            format!(
                "{probe} answered {status} ({message}): spec.url is not Bitbucket's base URL (its path must be the server's context path, the part before /rest)"
            ),
        )),
    }
}

/// Client credentials: a token, or why not (SonarQube maps Cloud's invalid_grant to "the consumer
/// must be private").
pub fn client_credentials(answer: &TokenAnswer) -> Result<(), Finding> {
    match answer {
        TokenAnswer::Token { .. } => Ok(()),
        TokenAnswer::Error {
            status,
            error,
            description,
        } => Err(match error.as_str() {
            "invalid_client" | "unauthorized_client" => Finding::new(
                Cause::OAuthClientRejected,
                format!(
                    "the token endpoint rejected the client id or secret ({status} {error}: {description})"
                ),
            ),
            "invalid_grant" => Finding::new(
                Cause::OAuthClientRejected,
                format!(
                    "the token endpoint refused the client-credentials grant ({status} {error}: {description}); the consumer must be private"
                ),
            ),
            _ => Finding::new(
                Cause::UnexpectedResponse,
                format!("the token endpoint answered {status} {error}: {description}"),
            ),
        }),
    }
}

/// The impossible-code exchange: invalid_grant means the client id, secret and redirect URL are
/// right (RFC 6749 section 5.2: the grant, not the client, is at fault).
pub fn application_link(answer: &TokenAnswer) -> Result<(), Finding> {
    match answer {
        TokenAnswer::Token { .. } => Err(Finding::new(
            Cause::UnexpectedResponse,
            "the token endpoint issued a token for a code that cannot be valid",
        )),
        TokenAnswer::Error {
            status,
            error,
            description,
        } => {
            let redirect = format!("{error} {description}")
                .to_ascii_lowercase()
                .contains("redirect");
            match error.as_str() {
                "invalid_client" | "unauthorized_client" => Err(Finding::new(
                    Cause::OAuthClientRejected,
                    format!(
                        "the token endpoint rejected the client id or secret ({status} {error}: {description})"
                    ),
                )),
                _ if redirect => Err(Finding::new(
                    Cause::OAuthRedirectMismatch,
                    format!(
                        "the token endpoint rejected the redirect URL ({status} {error}: {description})"
                    ),
                )),
                "invalid_grant" => Ok(()),
                _ => Err(Finding::new(
                    Cause::UnexpectedResponse,
                    format!("the token endpoint answered {status} {error}: {description}"),
                )),
            }
        }
    }
}

/// The HTTP session over the verified connection did not open: the server failed to answer.
pub fn session_failure(e: &crate::transport::http::HttpError) -> Finding {
    Finding::new(Cause::ServerError, e.to_string())
}

/// Method Basic: a warning that says what a user name and password gives away.
/// `consumer_secret`: the credential is a consumer's own Secret (spec.auth.secretRef.format).
pub fn basic_discouraged(consumer_secret: bool) -> Finding {
    Finding::new(
        Cause::BasicAuthDiscouraged,
        if consumer_secret {
            "the consumer's Secret holds a user name and password, sent as Basic: if the password is the user's, this integration can do everything the user can, so use an HTTP access token; if it is a personal HTTP access token, set spec.auth.method: AccessToken so bbconn reads its permissions and expiry"
        } else {
            "a user name and password gives this integration everything the user can do; use an HTTP access token"
        },
    )
}

/// Authenticated as it passed, naming who the credential is.
pub fn accepted(who: &str, warnings: Vec<Finding>) -> CheckResult {
    CheckResult::passed(
        Check::Authenticated,
        format!("Bitbucket accepts the credential ({who})"),
    )
    .with_warnings(warnings)
}

/// The token's own expiry: past is TokenExpired, within the window a warning.
pub fn expiry(
    expires_at: Option<jiff::Timestamp>,
    now: jiff::Timestamp,
    window: Duration,
) -> Result<Vec<Finding>, Finding> {
    let Some(at) = expires_at else {
        return Ok(Vec::new());
    };
    let left = at.duration_since(now);
    if left.is_negative() || left.is_zero() {
        return Err(Finding::new(
            Cause::TokenExpired,
            format!("the token expired at {at}"),
        ));
    }
    if left.unsigned_abs() < window {
        return Ok(vec![Finding::new(
            Cause::TokenExpiringSoon,
            format!("the token expires at {at}"),
        )]);
    }
    Ok(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(error: &str, description: &str) -> TokenAnswer {
        TokenAnswer::Error {
            status: 400,
            error: error.into(),
            description: description.into(),
        }
    }

    #[test]
    fn application_link_answers_per_rfc6749() {
        assert!(application_link(&err("invalid_grant", "unknown code")).is_ok());
        assert_eq!(
            application_link(&err("invalid_client", ""))
                .unwrap_err()
                .cause,
            Cause::OAuthClientRejected
        );
        assert_eq!(
            application_link(&err("invalid_request", "redirect_uri does not match"))
                .unwrap_err()
                .cause,
            Cause::OAuthRedirectMismatch
        );
    }

    #[test]
    fn expiry_windows() {
        let now = jiff::Timestamp::from_second(1_000_000).unwrap();
        let day = Duration::from_secs(86_400);
        assert_eq!(
            expiry(Some(now - jiff::SignedDuration::from_secs(1)), now, day)
                .unwrap_err()
                .cause,
            Cause::TokenExpired
        );
        assert_eq!(
            expiry(Some(now + jiff::SignedDuration::from_secs(3600)), now, day).unwrap()[0].cause,
            Cause::TokenExpiringSoon
        );
        assert!(
            expiry(
                Some(now + jiff::SignedDuration::from_secs(3 * 86_400)),
                now,
                day
            )
            .unwrap()
            .is_empty()
        );
    }
}
