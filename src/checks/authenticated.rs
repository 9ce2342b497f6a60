//! Authenticated: Bitbucket accepts the credential. Decided from the identity probe's answer
//! (Cloud `GET /2.0/user`, Data Center `application-properties`) or the token endpoint's.

use super::Finding;
use crate::api::AuthMethod;
use crate::bitbucket::cloud::UserAnswer;
use crate::bitbucket::datacenter::WhoAmI;
use crate::bitbucket::oauth::TokenAnswer;
use crate::catalogue::Cause;
use std::time::Duration;

/// App passwords are refused before anything is sent: Bitbucket Cloud removed them for good on
/// 2026-07-28 (Atlassian community announcements 3040975, 3106901, 3237429).
pub fn app_password() -> Finding {
    Finding::new(
        Cause::AppPasswordRetired,
        "Bitbucket Cloud no longer accepts app passwords (removed on 2026-07-28); bbconn did not send it",
    )
}

pub fn cloud(method: AuthMethod, answer: &UserAnswer) -> Result<(), Finding> {
    match answer {
        UserAnswer::Accepted { .. } => Ok(()),
        UserAnswer::Rejected {
            message,
            basic_realm,
        } => Err(match method {
            AuthMethod::Basic => Finding::new(
                Cause::CredentialsRejected,
                format!(
                    "Bitbucket Cloud answered 401 Unauthorized to GET /2.0/user: {message} (Cloud accepts no account passwords over its API; use an API token)"
                ),
            ),
            AuthMethod::ApiToken if *basic_realm => Finding::new(
                Cause::TokenRevoked,
                format!(
                    "Bitbucket Cloud answered 401 Unauthorized to GET /2.0/user for this email and API token: {message} (the token is revoked or expired, or the username is not the account's email)"
                ),
            ),
            _ => Finding::new(
                Cause::TokenRevoked,
                format!("Bitbucket Cloud answered 401 Unauthorized to GET /2.0/user: {message}"),
            ),
        }),
    }
}

pub fn datacenter(method: AuthMethod, base: &str, answer: &WhoAmI) -> Result<(), Finding> {
    match answer {
        WhoAmI::Accepted { user: Some(_), .. } => Ok(()),
        WhoAmI::Accepted { user: None, .. } => Err(Finding::new(
            Cause::UnexpectedResponse,
            format!(
                "{base} answered without naming a user (no X-AUSERNAME): the credential was not applied"
            ),
        )),
        WhoAmI::Rejected { exception, message } => {
            let text = format!(
                "Bitbucket answered 401 Unauthorized to GET /rest/api/latest/application-properties: {message}{}",
                if exception.is_empty() {
                    String::new()
                } else {
                    format!(" ({exception})")
                }
            );
            Err(if method == AuthMethod::Basic {
                Finding::new(Cause::CredentialsRejected, text)
            } else if message.to_ascii_lowercase().contains("expired") {
                // Not confirmed in Atlassian's docs whether an expired token's 401 says so; when it
                // does, say TokenExpired; otherwise the token's own data (if readable) decides.
                Finding::new(Cause::TokenExpired, text)
            } else {
                Finding::new(Cause::TokenRevoked, text)
            })
        }
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
