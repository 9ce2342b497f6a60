//! OAuth 2.0 token endpoints: Cloud's consumers and Data Center's incoming application links.
//! Error codes per RFC 6749 section 5.2.

use super::Api;
use super::Error;
use crate::credential::{SecretString, basic};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use std::collections::BTreeSet;

#[derive(Clone, Debug)]
pub enum TokenAnswer {
    Token {
        access_token: SecretString,
        /// Cloud answers `scopes` space-separated.
        scopes: Option<BTreeSet<String>>,
    },
    Error {
        status: u16,
        error: String,
        description: String,
    },
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, NON_ALPHANUMERIC)))
        .collect::<Vec<_>>()
        .join("&")
}

async fn exchange(
    api: &mut Api<'_>,
    path: &str,
    body: String,
    client_id: &SecretString,
    secret: &SecretString,
) -> Result<TokenAnswer, Error> {
    let r = api
        .post_form(path, body, Some(basic(client_id.expose(), secret.expose())))
        .await?;
    let json = r.json();
    if r.status.is_success() {
        let token = json.as_ref().and_then(|v| {
            v.get("access_token")
                .and_then(|t| t.as_str())
                .map(str::to_string)
        });
        let Some(token) = token else {
            return Err(Error::Unexpected(format!(
                "POST {path} answered {} without an access_token",
                r.status
            )));
        };
        let scopes = json
            .as_ref()
            .and_then(|v| v.get("scopes").or_else(|| v.get("scope")))
            .and_then(|s| s.as_str())
            .map(super::cloud::parse_scopes);
        return Ok(TokenAnswer::Token {
            access_token: SecretString::new(token),
            scopes,
        });
    }
    let field = |k: &str| {
        json.as_ref()
            .and_then(|v| v.get(k).and_then(|s| s.as_str()).map(str::to_string))
            .unwrap_or_default()
    };
    if r.status.as_u16() == 401 && field("error").is_empty() {
        // Basic client authentication refused without an OAuth body.
        return Ok(TokenAnswer::Error {
            status: 401,
            error: "invalid_client".into(),
            description: super::error_message(&r),
        });
    }
    Ok(TokenAnswer::Error {
        status: r.status.as_u16(),
        error: field("error"),
        description: field("error_description"),
    })
}

/// Client-credentials grant (Cloud; the consumer must be private).
pub async fn client_credentials(
    api: &mut Api<'_>,
    path: &str,
    client_id: &SecretString,
    secret: &SecretString,
) -> Result<TokenAnswer, Error> {
    exchange(
        api,
        path,
        form(&[("grant_type", "client_credentials")]),
        client_id,
        secret,
    )
    .await
}

/// The code that can never be valid: exchanging it proves the client id, secret and redirect
/// URL without a person and without creating anything (docs/design/contract.md, OAuthApplicationLink).
pub const PROBE_CODE: &str = "bbconn-probe-not-a-real-authorization-code";

pub async fn probe_code_exchange(
    api: &mut Api<'_>,
    path: &str,
    client_id: &SecretString,
    secret: &SecretString,
    redirect_url: &SecretString,
) -> Result<TokenAnswer, Error> {
    let body = form(&[
        ("grant_type", "authorization_code"),
        ("code", PROBE_CODE),
        ("redirect_uri", redirect_url.expose()),
    ]);
    exchange(api, path, body, client_id, secret).await
}
