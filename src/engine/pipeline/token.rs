//! Step 5's token exchange (OAuth methods): on the API's own session when the token endpoint
//! shares its origin, else over a connection of its own through the network path,
//! reachability and TLS steps. Its outcome is decided once: the answer, Authenticated's
//! failure, or the failure of the check the token endpoint did not pass (naming the endpoint),
//! which is then that check's verdict for the run.

use super::Run;
use crate::bitbucket::{Api, oauth};
use crate::checks::{CheckResult, Finding, Verdict, spec};
use crate::credential::SecretString;
use crate::transport::http::Session;

/// A token-endpoint exchange.
pub(super) enum Exchange<'c> {
    ClientCredentials {
        id: &'c SecretString,
        secret: &'c SecretString,
    },
    AppLink {
        id: &'c SecretString,
        secret: &'c SecretString,
        redirect: &'c SecretString,
    },
}

/// Why Authenticated did not pass.
pub(super) enum Failed {
    /// Its own verdict.
    Authenticated(Finding),
    /// The token endpoint failed an earlier check (network path, reachability, TLS).
    TokenEndpoint(CheckResult),
}

impl From<Finding> for Failed {
    fn from(f: Finding) -> Failed {
        Failed::Authenticated(f)
    }
}

pub(super) async fn exchange(
    run: &mut Run<'_>,
    token_url: &str,
    api_session: &mut Session,
    ex: Exchange<'_>,
) -> Result<oauth::TokenAnswer, Failed> {
    let tok = spec::origin(token_url, "spec.auth.tokenUrl")?;
    let path = tok.url.path().to_string();
    if tok.same(&run.input.api_origin) {
        return Ok(send(run, api_session, &path, &ex).await?);
    }
    // The token endpoint's ports are the spec's own: the profiles' speak of the API.
    match super::open(run, &tok, run.input.spec.allowed_ports()).await {
        Ok(mut s) => Ok(send(run, &mut s, &path, &ex).await?),
        Err(mut failed) => {
            if let Verdict::Failed(f) = &mut failed.verdict {
                f.message = format!("token endpoint {}: {}", tok.url, f.message);
            }
            Err(match failed.check {
                crate::catalogue::Check::Authenticated => match failed.verdict {
                    Verdict::Failed(f) => Failed::Authenticated(f),
                    _ => Failed::TokenEndpoint(failed),
                },
                _ => Failed::TokenEndpoint(failed),
            })
        }
    }
}

async fn send(
    run: &mut Run<'_>,
    session: &mut Session,
    path: &str,
    ex: &Exchange<'_>,
) -> Result<oauth::TokenAnswer, Finding> {
    let mut api = Api::new(session, "", None);
    let answer = match ex {
        Exchange::ClientCredentials { id, secret } => {
            oauth::client_credentials(&mut api, path, id, secret).await
        }
        Exchange::AppLink {
            id,
            secret,
            redirect,
        } => oauth::probe_code_exchange(&mut api, path, id, secret, redirect).await,
    };
    run.found.collect(&api);
    Ok(answer?)
}
