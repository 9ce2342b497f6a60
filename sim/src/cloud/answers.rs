//! Bitbucket Cloud's refusals: the texts and bodies of its 401, 403 and 404 answers, for the
//! REST API and for git over HTTPS, kept together so each is written once.

use serde_json::{Value, json};

use crate::http::{self as h, Resp};

/// docs/design/bitbucket-api.md, "Errors": the same text for invalid, revoked and expired tokens.
const TOKEN_INVALID: &str = "Token is invalid, expired, or not supported for this endpoint.";
/// docs/design/bitbucket-api.md, "Learning a credential's scopes" (Renovate reads `detail.required`).
pub(super) const SCOPES_LACKING: &str =
    "Your credentials lack one or more required privilege scopes.";
/// docs/design/bitbucket-api.md, "Errors": no access and no such repository look the same.
pub(super) const REPO_NOT_FOUND: &str = "You may not have access to this repository or it no longer exists in this workspace. If you think this repository exists and you have access, make sure you are authenticated.";
/// tests/real-answers/answers.json `cloud-401-access-token-expired` (and, with the hint,
/// `cloud-401-access-token-expired-refresh`).
pub(super) const ACCESS_TOKEN_EXPIRED: &str = "Access token expired.";
pub(super) const ACCESS_TOKEN_EXPIRED_HINT: &str =
    " Use your refresh token to obtain a new access token.";
/// tests/real-answers/answers.json `cloud-401-login-failed-text`: the whole plain-text body.
pub(super) const LOGIN_FAILED: &str = "Login failed due to incorrect login credentials or method.\nFor information on authentication methods for Bitbucket Cloud APIs, visit:\n    https://developer.atlassian.com/cloud/bitbucket/rest/intro/#authentication\nIf you are unsure of which login details or login method to use, visit:\n    https://support.atlassian.com/bitbucket-cloud/docs/log-into-or-connect-to-bitbucket-cloud/";
/// tests/real-answers/answers.json `cloud-401-account-password`.
pub(super) const ACCOUNT_PASSWORD: &str = "Bitbucket Cloud recently stopped supporting account passwords for API authentication.\nSee our community post for more details: https://atlassian.community/t5/x/x/ba-p/1948231\nApp passwords are recommended for most use cases and can be created in your Personal settings:\nhttps://bitbucket.org/account/settings/app-passwords/\nFor more details on API authentication methods see our documentation:\nhttps://developer.atlassian.com/cloud/bitbucket/rest/intro/#authentication";
/// tests/real-answers/answers.json `cloud-404-no-api`.
const NO_API: &str = "There is no API hosted at this URL.\n\nFor information about our API's, please refer to the documentation at: https://developer.atlassian.com/bitbucket/api/2/reference/";

/// Marks a 403 for missing scopes, so `handle` can leave the scope headers off it.
#[derive(Clone, Copy)]
pub(super) struct ScopeError;

/// Not documented: the message for an access token on a user-only endpoint (`GET /2.0/user`
/// answers 403 to access tokens, docs/design/bitbucket-api.md).
pub(super) const USER_ONLY: &str = "This API is only accessible with the following authentication types: session, password, apppassword, api_token";

/// Atlassian KB "Error 403 when performing Git operations" (the texts git prints after `remote:`).
pub(super) const GIT_IP_NOT_ALLOWED: &str =
    "To access this repository, an admin must whitelist your IP.";
pub(super) const GIT_TWO_STEP: &str = "To access this repository, enable two-step authentication.";
pub(super) const GIT_NO_ACCESS: &str = "The requested repository either does not exist or you do not have access. If you believe this repository exists and you have access, make sure you're authenticated.";

pub(super) fn error_json(message: &str) -> Value {
    json!({"type": "error", "error": {"message": message}})
}

pub(super) fn token_invalid() -> Resp {
    h::json(401, &error_json(TOKEN_INVALID))
}

/// Wrong Basic credentials: a plain-text 401 (tests/real-answers/answers.json
/// `cloud-401-login-failed-text`) with a `BitbucketCustom` challenge
/// (`cloud-401-www-authenticate-bitbucketcustom`). App passwords are retired for good
/// (community.atlassian.com announcements 3040975, 3237429), so every app password lands here too.
pub(super) fn basic_rejected(body: &str) -> Resp {
    let mut r = h::bytes(401, "text/plain", body.to_owned());
    h::set_header(
        &mut r,
        "www-authenticate",
        "BitbucketCustom realm=\"Bitbucket.org HTTP\"",
    );
    r
}

/// git over HTTPS asks without credentials first and sends them only after a 401 with a Basic
/// challenge, which is what bitbucket.org's git endpoint sends (the REST API's BitbucketCustom
/// challenge would leave git without a way to answer).
pub(super) fn git_rejected() -> Resp {
    let mut r = h::bytes(401, "text/plain", LOGIN_FAILED.to_owned());
    h::set_header(
        &mut r,
        "www-authenticate",
        "Basic realm=\"Bitbucket.org HTTP\"",
    );
    r
}

/// `cloud-404-no-api`: "Resource not found" with the no-API detail.
pub(super) fn not_found() -> Resp {
    h::json(
        404,
        &json!({"type": "error", "error": {"message": "Resource not found", "detail": NO_API}}),
    )
}
