//! CredentialsResolved for a consumer's own Secret (spec.auth.secretRef.format): what Argo CD
//! or Flux sends to git, chosen between its keys as that consumer chooses, then the REST
//! credential that sends the same secret by the method (given, or inferred from the Secret).

use super::{Finding, Resolved, optional, value};
use crate::api::{Auth, AuthMethod, BitbucketConnectionSpec, Flavor, SecretFormat};
use crate::catalogue::Cause;
use crate::checks::git_access::{API_TOKEN_USER, TOKEN_USER};
use crate::credential::{Credential, GitCredential, SecretString};
use std::collections::BTreeMap;

type Data = BTreeMap<String, Vec<u8>>;

/// The consumer's Secret: git's credential, the method, and the REST credential.
pub(super) fn resolve(
    spec: &BitbucketConnectionSpec,
    auth: &Auth,
    format: SecretFormat,
    secret_name: &str,
    data: &Data,
) -> Result<Resolved, Finding> {
    let who = format!("the {} Secret {secret_name}", format.consumer());
    let git = git_credential(format, &who, secret_name, data)?;
    let (method, inferred) = match auth.method {
        Some(m) => (m, false),
        None => (inferred_method(&git, spec.flavor), true),
    };
    let credential = rest_credential(method, &git, format, &who, secret_name, data)?;
    Ok(Resolved {
        credential,
        method,
        inferred,
        git: Some(git),
    })
}

fn missing(who: &str, what: String) -> Finding {
    Finding::new(Cause::SecretKeyMissing, format!("{who} {what}"))
}

/// What the consumer sends to git, as it chooses between its keys.
fn git_credential(
    format: SecretFormat,
    who: &str,
    secret_name: &str,
    data: &Data,
) -> Result<GitCredential, Finding> {
    let username = value(data, secret_name, "username")?;
    let password = value(data, secret_name, "password")?;
    let bearer = value(data, secret_name, "bearerToken")?;
    let basic = |username: Option<SecretString>, password: SecretString, what: &str| {
        username
            .map(|u| GitCredential::Basic {
                username: u.expose().to_string(),
                password,
            })
            .ok_or_else(|| {
                missing(who, format!(
                    "has a password but no username: {what}; put the user name git takes under key username (Cloud access tokens: {TOKEN_USER}; Cloud API tokens: {API_TOKEN_USER} or the Bitbucket username; Data Center: the token owner's or the user's name), or the token under bearerToken"
                ))
            })
    };
    match format {
        SecretFormat::Flux => match (bearer, password) {
            (Some(_), p) if p.is_some() || username.is_some() => Err(Finding::new(
                Cause::CredentialMalformed,
                format!(
                    "{who} holds bearerToken and username/password: Flux refuses such a Secret (basic auth and bearer token cannot be set at the same time); keep only one of them"
                ),
            )),
            (Some(token), _) => Ok(GitCredential::Bearer { token }),
            (None, Some(p)) => basic(
                username,
                p,
                "Flux would send the password with an empty user name",
            ),
            (None, None) => Err(missing(
                who,
                "has no password or bearerToken (Flux reads username and password, or bearerToken)"
                    .into(),
            )),
        },
        SecretFormat::ArgoCd => {
            let force_basic = optional(data, "forceHttpBasicAuth").as_deref() == Some("true");
            match (bearer, password) {
                (Some(token), p) if !(force_basic && p.is_some()) => {
                    Ok(GitCredential::Bearer { token })
                }
                (_, Some(p)) => basic(
                    username,
                    p,
                    "Argo CD would send it with the user name x-access-token, which Bitbucket does not know",
                ),
                _ => Err(missing(
                    who,
                    "has no password or bearerToken (Argo CD reads username and password, or bearerToken)".into(),
                )),
            }
        }
    }
}

/// The method a consumer's Secret is taken as when spec.auth.method is absent.
fn inferred_method(git: &GitCredential, flavor: Flavor) -> AuthMethod {
    match (git, flavor) {
        (GitCredential::Bearer { .. }, _) => AuthMethod::AccessToken,
        (GitCredential::Basic { .. }, Flavor::DataCenter) => AuthMethod::Basic,
        (GitCredential::Basic { username, .. }, Flavor::Cloud) if username == TOKEN_USER => {
            AuthMethod::AccessToken
        }
        (GitCredential::Basic { .. }, Flavor::Cloud) => AuthMethod::ApiToken,
    }
}

/// The REST credential that sends git's secret by `method`.
fn rest_credential(
    method: AuthMethod,
    git: &GitCredential,
    format: SecretFormat,
    who: &str,
    secret_name: &str,
    data: &Data,
) -> Result<Credential, Finding> {
    let secret = git.secret().clone();
    match (method, git) {
        (AuthMethod::AccessToken, _) => Ok(Credential::AccessToken {
            token: secret,
            token_id: optional(data, "tokenId"),
        }),
        (AuthMethod::ApiToken, _) => Ok(Credential::ApiToken {
            email: api_token_email(git, format, who, secret_name, data)?,
            token: secret,
        }),
        (AuthMethod::Basic | AuthMethod::AppPassword, GitCredential::Basic { username, .. }) => {
            let username = SecretString::new(username.clone());
            Ok(if method == AuthMethod::Basic {
                Credential::Basic {
                    username,
                    password: secret,
                }
            } else {
                Credential::AppPassword {
                    username,
                    password: secret,
                }
            })
        }
        (AuthMethod::Basic | AuthMethod::AppPassword, GitCredential::Bearer { .. }) => {
            Err(missing(
                who,
                format!(
                    "holds a bearerToken, but method {method:?} reads username and password; set spec.auth.method: AccessToken, or remove it to infer it"
                ),
            ))
        }
        (AuthMethod::OAuthClientCredentials | AuthMethod::OAuthApplicationLink, _) => {
            Err(Finding::new(
                Cause::InvalidSpec,
                format!(
                    "method {method:?} reads a client id and secret, which a {} Secret does not hold",
                    format.consumer()
                ),
            ))
        }
    }
}

/// The REST API takes a Cloud API token only with the account email; git takes it with the
/// Bitbucket username or x-bitbucket-api-token-auth, never the email.
fn api_token_email(
    git: &GitCredential,
    format: SecretFormat,
    who: &str,
    secret_name: &str,
    data: &Data,
) -> Result<SecretString, Finding> {
    match git.username() {
        Some(u) if u.contains('@') => Ok(SecretString::new(u.to_string())),
        shown => match value(data, secret_name, "email")? {
            Some(e) if e.expose().contains('@') => Ok(e),
            Some(_) => Err(Finding::new(
                Cause::CredentialMalformed,
                format!(
                    "the value under key \"email\" of {who} is not an email address: the REST API takes a Cloud API token only with the Atlassian account email"
                ),
            )),
            None => {
                let sent = shown
                    .map(|u| format!("username {u}"))
                    .unwrap_or_else(|| "bearerToken".into());
                Err(missing(
                    who,
                    format!(
                        "has no key email: its {sent} is what git takes with a Cloud API token, but the REST API takes the token only with the Atlassian account email; add it under key email ({} does not read that key)",
                        format.consumer()
                    ),
                ))
            }
        },
    }
}
