//! CredentialsResolved: the Secret exists, is readable, and holds well-formed values under the
//! keys the auth method reads. Pure: the caller fetches the Secret.

use super::{Finding, Lookup};
use crate::api::{AuthMethod, BitbucketConnectionSpec};
use crate::catalogue::Cause;
use crate::credential::{Credential, SecretString};

/// The largest credential value bbconn sends. Bitbucket's tokens are under 200 bytes; servers
/// refuse request headers over 8-16 KiB (431), which would read as a server problem.
pub const MAX_VALUE_BYTES: usize = 16 << 10;

/// Resolves the credential from the Secret's data. Messages name keys, never values.
pub fn check(
    spec: &BitbucketConnectionSpec,
    secret_name: &str,
    secret: &Lookup,
) -> Result<Credential, Finding> {
    let data = match secret {
        Lookup::Found(data, _) => data,
        Lookup::NotFound => {
            return Err(Finding::new(
                Cause::SecretNotFound,
                format!("Secret {secret_name} does not exist"),
            ));
        }
        Lookup::Forbidden(detail) => {
            return Err(Finding::new(
                Cause::SecretForbidden,
                format!("bbconn may not read Secret {secret_name}: {detail}"),
            ));
        }
        Lookup::Failed(detail) => {
            return Err(Finding::new(
                Cause::ServerError,
                format!("reading Secret {secret_name} failed: {detail}"),
            ));
        }
    };
    let keys = spec.auth.secret_ref.keys.clone().unwrap_or_default();
    let get = |logical: &str, custom: &Option<String>| -> Result<SecretString, Finding> {
        let key = custom.as_deref().unwrap_or(logical);
        let raw = match data.get(key) {
            Some(v) if !v.is_empty() => v,
            _ => {
                return Err(Finding::new(
                    Cause::SecretKeyMissing,
                    format!(
                        "Secret {secret_name} has no value under key {key:?}, which method {:?} reads",
                        spec.auth.method
                    ),
                ));
            }
        };
        if raw.len() > MAX_VALUE_BYTES {
            return Err(Finding::new(
                Cause::CredentialMalformed,
                format!(
                    "the value under key {key:?} of Secret {secret_name} is {} KiB; no credential is larger than {} KiB, so this is not one (a file or a certificate chain under the wrong key?)",
                    raw.len() >> 10,
                    MAX_VALUE_BYTES >> 10
                ),
            ));
        }
        let text = std::str::from_utf8(raw).map_err(|_| {
            Finding::new(
                Cause::CredentialMalformed,
                format!("the value under key {key:?} of Secret {secret_name} is not UTF-8 text"),
            )
        })?;
        if text.trim() != text {
            return Err(Finding::new(
                Cause::CredentialMalformed,
                format!(
                    "the value under key {key:?} of Secret {secret_name} has leading or trailing whitespace (often a newline from echo)"
                ),
            ));
        }
        if text.chars().any(char::is_control) {
            return Err(Finding::new(
                Cause::CredentialMalformed,
                format!(
                    "the value under key {key:?} of Secret {secret_name} contains control characters"
                ),
            ));
        }
        Ok(SecretString::new(text.to_string()))
    };
    let optional = |logical: &str| -> Option<String> {
        data.get(logical)
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let credential = match spec.auth.method {
        AuthMethod::AccessToken => Credential::AccessToken {
            token: get("token", &keys.token)?,
            token_id: optional("tokenId"),
        },
        AuthMethod::ApiToken => {
            let email = get("username", &keys.username)?;
            if !email.expose().contains('@') {
                return Err(Finding::new(
                    Cause::CredentialMalformed,
                    format!(
                        "the username of Secret {secret_name} must be the Atlassian account email: API tokens authenticate as email:token"
                    ),
                ));
            }
            Credential::ApiToken {
                email,
                token: get("token", &keys.token)?,
            }
        }
        AuthMethod::Basic => Credential::Basic {
            username: get("username", &keys.username)?,
            password: get("password", &keys.password)?,
        },
        AuthMethod::AppPassword => Credential::AppPassword {
            username: get("username", &keys.username)?,
            password: get("password", &keys.password)?,
        },
        AuthMethod::OAuthClientCredentials => Credential::OAuthClient {
            client_id: get("clientId", &keys.client_id)?,
            client_secret: get("clientSecret", &keys.client_secret)?,
        },
        AuthMethod::OAuthApplicationLink => {
            let redirect_url = get("redirectUrl", &keys.redirect_url)?;
            if url::Url::parse(redirect_url.expose()).is_err() {
                return Err(Finding::new(
                    Cause::CredentialMalformed,
                    format!("the redirectUrl of Secret {secret_name} is not an absolute URL"),
                ));
            }
            Credential::OAuthAppLink {
                client_id: get("clientId", &keys.client_id)?,
                client_secret: get("clientSecret", &keys.client_secret)?,
                redirect_url,
            }
        }
    };
    Ok(credential)
}

/// The expiry the Secret declares in its bbconn.dev/expires-at annotation (RFC 3339), for
/// credentials whose expiry Bitbucket does not reveal. A value that is not a timestamp is
/// CredentialMalformed, naming the annotation.
pub fn declared_expiry(
    secret_name: &str,
    secret: &Lookup,
) -> Result<Option<jiff::Timestamp>, Finding> {
    let Lookup::Found(_, meta) = secret else {
        return Ok(None);
    };
    let Some(raw) = meta.expires_at.as_deref() else {
        return Ok(None);
    };
    raw.trim().parse::<jiff::Timestamp>().map(Some).map_err(|_| {
        Finding::new(
            Cause::CredentialMalformed,
            format!(
                "the annotation {} of Secret {secret_name} is {:?}, not an RFC 3339 time such as 2027-01-31T00:00:00Z",
                super::EXPIRES_AT,
                crate::bitbucket::excerpt(raw, 40)
            ),
        )
    })
}
