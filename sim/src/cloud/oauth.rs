//! Bitbucket Cloud's OAuth 2.0 token endpoint, `POST /site/oauth2/access_token`
//! (developer.atlassian.com/cloud/bitbucket/oauth-2): client credentials and refresh tokens
//! issue access tokens; no authorization code is ever valid.

use http::Method;
use serde_json::json;

use crate::http::{self as h, Credential, Req, Resp, parse_authorization};
use crate::state::{Shared, lock};

fn oauth_error(code: u16, error: &str, description: &str) -> Resp {
    h::json(
        code,
        &json!({"error": error, "error_description": description}),
    )
}

pub(super) fn oauth_token(shared: &Shared, req: &Req) -> Resp {
    if req.method != Method::POST {
        return oauth_error(
            405,
            "invalid_request",
            "The token endpoint accepts POST only",
        );
    }
    let cloud = &shared.fixture.cloud;
    let form = req.form();
    let field = |k: &str| form.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
    // Client authentication: HTTP Basic client_id:secret, or client_id/client_secret in the form.
    let (client_id, client_secret) = match req.authorization().map(parse_authorization) {
        Some(Credential::Basic { user, password }) => (Some(user), Some(password)),
        _ => (field("client_id"), field("client_secret")),
    };
    // tests/real-answers/answers.json `cloud-token-unauthorized-client-no-auth` and
    // `cloud-token-400-unauthorized-client`: 400 unauthorized_client, not RFC 6749's 401.
    if client_id.is_none() {
        return oauth_error(
            400,
            "unauthorized_client",
            "Requests must be authenticated using OAuth client credentials",
        );
    }
    let consumer = cloud.oauth_consumers.iter().enumerate().find(|(_, c)| {
        Some(&c.key) == client_id.as_ref() && Some(&c.secret) == client_secret.as_ref()
    });
    let Some((index, consumer)) = consumer else {
        return oauth_error(
            400,
            "unauthorized_client",
            "Invalid OAuth client credentials",
        );
    };
    match field("grant_type").as_deref() {
        Some("client_credentials") => {
            // `cloud-token-400-public-consumer`: the consumer must be private.
            if !consumer.private {
                return oauth_error(
                    400,
                    "invalid_grant",
                    "Cannot use client_credentials with a consumer marked as \"public\". Calls for auto generated consumers should use urn:bitbucket:oauth2:jwt instead.",
                );
            }
            issue_response(shared, index, "client_credentials")
        }
        Some("authorization_code") => {
            // confluence.atlassian.com/bitbucket/oauth-on-bitbucket-238027431.html: a redirect URL
            // given in a request must extend the consumer's callback URL (it may append to it).
            if let (Some(given), Some(registered)) = (field("redirect_uri"), &consumer.callback_url)
                && !given.starts_with(registered.as_str())
            {
                return oauth_error(
                    400,
                    "invalid_request",
                    "redirect_uri does not match the redirect URI registered for this client",
                );
            }
            // No authorization step exists here, so no code is ever valid.
            oauth_error(
                400,
                "invalid_grant",
                "The authorization code is invalid or has expired",
            )
        }
        Some("refresh_token") => {
            let known = field("refresh_token")
                .and_then(|t| lock(&shared.cloud.refresh).get(&t).copied())
                .is_some_and(|c| c == index);
            if known {
                issue_response(shared, index, "refresh_token")
            } else {
                oauth_error(400, "invalid_grant", "Invalid refresh_token")
            }
        }
        None => oauth_error(400, "invalid_request", "Missing grant_type parameter"),
        Some(other) => oauth_error(
            400,
            "unsupported_grant_type",
            &format!("Unsupported grant type: {other}"),
        ),
    }
}

fn issue_response(shared: &Shared, consumer: usize, state: &str) -> Resp {
    let scopes = shared
        .fixture
        .cloud
        .oauth_consumers
        .get(consumer)
        .map(|c| c.scopes.join(" "))
        .unwrap_or_default();
    let (access, refresh) = shared.cloud.issue(consumer);
    h::json(
        200,
        &json!({
            "access_token": access,
            "scopes": scopes,
            "expires_in": shared.fixture.cloud.oauth_token_ttl_seconds,
            "token_type": "bearer",
            "state": state,
            "refresh_token": refresh,
        }),
    )
}
