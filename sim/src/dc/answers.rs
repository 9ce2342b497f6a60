//! Bitbucket Data Center's answers' envelope and refusals: its own JSON content type, the
//! `{"errors": [...]}` body, and the texts and exception names of its 401, 403 and 404 answers.

use serde_json::{Value, json};

use crate::http::{self as h, Resp};

/// docs/design/bitbucket-api.md, Data Center "Errors".
pub(super) const AUTH_FAILED: &str =
    "Authentication failed. Please check your credentials and try again.";
pub(super) const AUTH_FAILED_EXCEPTION: &str =
    "com.atlassian.bitbucket.auth.IncorrectPasswordAuthenticationException";
/// Not confirmed in Atlassian's documentation (fixture switch `expiredTokenMessage`).
pub(super) const TOKEN_EXPIRED: &str = "The access token has expired.";
const NOT_PERMITTED: &str = "You are not permitted to access this resource";
pub(super) const NOT_PERMITTED_EXCEPTION: &str = "com.atlassian.bitbucket.AuthorisationException";
/// tests/real-answers/answers.json `dc-401-anonymous-required` (Bitbucket 10.4.1).
const AUTH_REQUIRED_EXCEPTION: &str =
    "com.atlassian.plugins.rest.api.security.exception.AuthenticationRequiredException";
/// tests/real-answers/answers.json `dc-403-basic-disabled` (the body is exactly this object).
const BASIC_DISABLED: &str = "Basic Authentication has been disabled on this instance.";
/// The exception is Bitbucket's (its javadoc: thrown once a user failed too often); the text is
/// what public clients quote, not confirmed word for word.
const CAPTCHA_REQUIRED: &str = "CAPTCHA required. Your Bitbucket account has been locked. To unlock it and log in again you must solve a CAPTCHA. This is typically caused by too many attempts to login with an incorrect password.";
const CAPTCHA_EXCEPTION: &str =
    "com.atlassian.bitbucket.auth.CaptchaRequiredAuthenticationException";

/// Data Center's own content type (tests/real-answers/answers.json records it on every answer).
pub(super) fn json(code: u16, body: &Value) -> Resp {
    h::bytes(code, "application/json;charset=UTF-8", body.to_string())
}

pub(super) fn errors(code: u16, message: &str, exception: Option<&str>) -> Resp {
    json(
        code,
        &json!({"errors": [{"context": null, "message": message, "exceptionName": exception}]}),
    )
}

pub(super) fn auth_required() -> Resp {
    errors(401, NOT_PERMITTED, Some(AUTH_REQUIRED_EXCEPTION))
}

pub(super) fn basic_disabled() -> Resp {
    json(403, &json!({"message": BASIC_DISABLED}))
}

/// Jira's and Bitbucket's denied-reason header: `CAPTCHA_CHALLENGE; login-url=<login page>`.
pub(super) fn captcha_required(base: &str) -> Resp {
    let mut r = errors(401, CAPTCHA_REQUIRED, Some(CAPTCHA_EXCEPTION));
    h::set_header(
        &mut r,
        "x-authentication-denied-reason",
        &format!("CAPTCHA_CHALLENGE; login-url={base}/login"),
    );
    r
}

pub(super) fn auth_failed() -> Resp {
    errors(401, AUTH_FAILED, Some(AUTH_FAILED_EXCEPTION))
}

/// docs/design/bitbucket-api.md: a missing permission is also 401.
pub(super) fn not_permitted() -> Resp {
    errors(401, NOT_PERMITTED, Some(NOT_PERMITTED_EXCEPTION))
}

pub(super) fn no_such_project(key: &str) -> Resp {
    errors(
        404,
        &format!("Project {key} does not exist."),
        Some("com.atlassian.bitbucket.project.NoSuchProjectException"),
    )
}

pub(super) fn no_such_repository(key: &str, slug: &str) -> Resp {
    errors(
        404,
        &format!("Repository {key}/{slug} does not exist."),
        Some("com.atlassian.bitbucket.repository.NoSuchRepositoryException"),
    )
}

pub(crate) fn not_found() -> Resp {
    errors(404, "Not Found", None)
}
