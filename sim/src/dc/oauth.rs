//! Bitbucket Data Center's OAuth 2.0 token endpoint for incoming application links (seed 003;
//! docs/design/bitbucket-api.md): the authorization code grant (with or without PKCE) only, and
//! since the simulator has no authorization step, no code or refresh token is ever valid.

use http::Method;
use serde_json::json;

use crate::fixture::DataCenter;
use crate::http::{Credential, Req, Resp, parse_authorization};

use super::answers::json;

fn oauth_error(code: u16, error: &str, description: &str) -> Resp {
    json(
        code,
        &json!({"error": error, "error_description": description}),
    )
}

pub(super) fn oauth_token(dc: &DataCenter, req: &Req) -> Resp {
    if req.method != Method::POST {
        return oauth_error(
            405,
            "invalid_request",
            "The token endpoint accepts POST only",
        );
    }
    let form = req.form();
    let field = |k: &str| form.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
    let (client_id, client_secret) = match req.authorization().map(parse_authorization) {
        Some(Credential::Basic { user, password }) => (Some(user), Some(password)),
        _ => (field("client_id"), field("client_secret")),
    };
    let Some(client) = dc.oauth_clients.iter().find(|c| {
        Some(&c.client_id) == client_id.as_ref() && Some(&c.client_secret) == client_secret.as_ref()
    }) else {
        return oauth_error(401, "invalid_client", "Client authentication failed");
    };
    match field("grant_type").as_deref() {
        Some("authorization_code") => {
            if field("redirect_uri").is_some_and(|r| r != client.redirect_url) {
                return oauth_error(
                    400,
                    "invalid_request",
                    "redirect_uri does not match the redirect URI registered for this client",
                );
            }
            oauth_error(
                400,
                "invalid_grant",
                "The authorization code is invalid or has expired",
            )
        }
        Some("refresh_token") => oauth_error(
            400,
            "invalid_grant",
            "The refresh token is invalid or has expired",
        ),
        None => oauth_error(400, "invalid_request", "Missing grant_type parameter"),
        Some(other) => oauth_error(
            400,
            "unsupported_grant_type",
            &format!("Unsupported grant type: {other}"),
        ),
    }
}
