//! Step 5, Authenticated: the HTTP session, then, unless Bitbucket rejected this credential
//! before, the method's way of showing it (a token exchange for OAuth, see `token.rs`; the
//! identity probe otherwise), then its expiry. Decided by `checks/authenticated.rs`.

use super::tls::Secured;
use super::token::{self, Exchange, Failed};
use super::{Leg, Rest, Run, Step};
use crate::api::{AuthMethod, CredentialInfo, ExpirySource, Flavor, ServerInfo};
use crate::bitbucket::{Api, Identity, cloud, datacenter, oauth};
use crate::catalogue::Check;
use crate::checks::{CheckResult, Finding, authenticated};
use crate::credential::{Credential, bearer};
use crate::engine::Env;
use crate::transport::http::Session;
use crate::withhold;

/// The API session and who the credential is.
pub(super) struct Authenticated {
    pub session: Session,
    pub identity: Identity,
}

/// An HTTP session over a verified connection; Err: Authenticated's verdict (the server failed
/// to answer).
pub(super) async fn session(env: &Env, s: Secured) -> Result<Session, CheckResult> {
    Session::open(
        s.stream,
        s.authority,
        env.net.request_timeout,
        env.net.max_body,
    )
    .await
    .map_err(|e| CheckResult::failed(Check::Authenticated, authenticated::session_failure(&e)))
}

pub(super) async fn check(
    run: &mut Run<'_>,
    rest: &Rest,
    leg: &Leg<'_>,
    secured: Secured,
) -> Step<Authenticated> {
    let t = run.input;
    let env = run.env;
    let failed = |f| CheckResult::failed(Check::Authenticated, f);
    let leaf = secured.leaf.clone();
    let mut session = session(env, secured).await?;
    run.found.server = Some(ServerInfo {
        flavor: Some(t.spec.flavor),
        addresses: leg.addresses.clone(),
        port: leg.origin.url.port_or_known_default(),
        ..ServerInfo::default()
    });
    run.found.certificate = leaf;

    let mut identity = Identity::default();
    let credential_key = t.credential_key(rest);
    if let Some(notice) = run.withheld(withhold::Kind::Rest, &credential_key) {
        let mut info = credential_info(rest.method, &identity, t.declared_expiry);
        info.withheld_since = run.found.withheld.as_ref().map(|w| w.since.to_string());
        run.found.credential = Some(info);
        return Err(failed(notice));
    }
    let shown = show(run, rest, &mut session, &mut identity).await;
    if let Some(s) = run.found.server.as_mut() {
        s.version = identity.server_version.clone();
    }
    run.found.credential = Some(credential_info(rest.method, &identity, t.declared_expiry));
    match shown {
        Err(Failed::Authenticated(f)) if f.cause.withholds_credential() => {
            let notice = run.refused(withhold::Kind::Rest, credential_key, f);
            if let (Some(c), Some(w)) = (run.found.credential.as_mut(), &run.found.withheld) {
                c.withheld_since = Some(w.since.to_string());
            }
            return Err(failed(notice));
        }
        Err(Failed::Authenticated(f)) => return Err(failed(f)),
        // The token endpoint failed a check the API origin passed: that is the check's verdict.
        Err(Failed::TokenEndpoint(r)) => return Err(r),
        Ok(()) => {}
    }
    env.withheld.release(&credential_key);
    let mut warnings = authenticated::expiry(
        identity.expires_at.or(t.declared_expiry),
        (env.clock)(),
        t.spec.expiry_warning(),
    )
    .map_err(failed)?;
    if rest.method == AuthMethod::Basic {
        warnings.push(authenticated::basic_discouraged(
            rest.git_credential.is_some(),
        ));
    }
    let who = identity
        .user
        .clone()
        .or(identity.kind.clone())
        .unwrap_or_else(|| "the client".into());
    let passed = authenticated::accepted(&who, warnings);
    Ok((Authenticated { session, identity }, vec![passed]))
}

/// Shows the credential the method's way, filling `identity` with what Bitbucket said.
async fn show(
    run: &mut Run<'_>,
    rest: &Rest,
    session: &mut Session,
    identity: &mut Identity,
) -> Result<(), Failed> {
    let t = run.input;
    let spec = &t.spec;
    let base_path = t.api_origin.url.path().trim_end_matches('/').to_string();
    match (spec.flavor, &rest.credential) {
        (_, Credential::AppPassword { .. }) => Err(authenticated::app_password().into()),
        (
            Flavor::Cloud,
            Credential::OAuthClient {
                client_id,
                client_secret,
            },
        ) => {
            let token_url = spec
                .auth
                .as_ref()
                .and_then(|a| a.token_url.as_deref())
                .unwrap_or(crate::api::CLOUD_TOKEN_URL);
            let ex = Exchange::ClientCredentials {
                id: client_id,
                secret: client_secret,
            };
            let answer = token::exchange(run, token_url, session, ex).await?;
            authenticated::client_credentials(&answer)?;
            if let oauth::TokenAnswer::Token {
                access_token,
                scopes,
            } = answer
            {
                identity.authorization = Some(bearer(access_token.expose()));
                identity.scopes = scopes;
            }
            cloud_identity(run, rest.method, session, &base_path, identity).await?;
            identity.kind = identity.kind.take().or(Some("oauth2".into()));
            Ok(())
        }
        (
            _,
            Credential::OAuthAppLink {
                client_id,
                client_secret,
                redirect_url,
            },
        ) => {
            let default_dc = format!(
                "{}/rest/oauth2/latest/token",
                spec.base_url().trim_end_matches('/')
            );
            let token_url = spec.auth.as_ref().and_then(|a| a.token_url.clone());
            let token_url = token_url.unwrap_or(match spec.flavor {
                Flavor::Cloud => crate::api::CLOUD_TOKEN_URL.to_string(),
                Flavor::DataCenter => default_dc,
            });
            let ex = Exchange::AppLink {
                id: client_id,
                secret: client_secret,
                redirect: redirect_url,
            };
            let answer = token::exchange(run, &token_url, session, ex).await?;
            authenticated::application_link(&answer)?;
            identity.kind = Some("application_link".into());
            Ok(())
        }
        (Flavor::Cloud, c) => {
            identity.authorization = c.authorization();
            cloud_identity(run, rest.method, session, &base_path, identity).await
        }
        (Flavor::DataCenter, c) => {
            identity.authorization = c.authorization();
            let mut api = Api::new(session, &base_path, identity.authorization.clone());
            let result =
                datacenter_identity(run, rest.method, &mut api, &base_path, c, identity).await;
            run.found.collect(&api);
            result.map_err(Failed::from)
        }
    }
}

/// Cloud's identity probe with the credential in `identity.authorization`: who, what kind, and
/// the granted scopes (scopes already learned from a token endpoint are kept: they are its answer).
async fn cloud_identity(
    run: &mut Run<'_>,
    method: AuthMethod,
    session: &mut Session,
    base_path: &str,
    identity: &mut Identity,
) -> Result<(), Failed> {
    let mut api = Api::new(session, base_path, identity.authorization.clone());
    let who = cloud::whoami(&mut api).await;
    run.found.collect(&api);
    let who = who.map_err(Finding::from)?;
    authenticated::cloud(method, base_path, &who)?;
    match who {
        cloud::UserAnswer::Accepted { user, kind, scopes } => {
            identity.user = user;
            identity.kind = kind;
            identity.scopes = identity.scopes.take().or(scopes);
        }
        cloud::UserAnswer::ScopeMissing { granted, required } => {
            // Bitbucket's own list of what the credential holds now wins over a token
            // endpoint's answer.
            identity.scopes = Some(granted);
            identity.probe_needs = required;
        }
        _ => {}
    }
    Ok(())
}

/// Data Center's identity probe, then, for an HTTP access token, its metadata (kind,
/// permissions, expiry) where the token's owner may read it.
async fn datacenter_identity(
    run: &Run<'_>,
    method: AuthMethod,
    api: &mut Api<'_>,
    base_path: &str,
    c: &Credential,
    identity: &mut Identity,
) -> Result<(), Finding> {
    let t = run.input;
    let who = datacenter::whoami(api).await?;
    if let datacenter::WhoAmI::Accepted { version, .. }
    | datacenter::WhoAmI::Anonymous { version } = &who
    {
        identity.server_version = version.clone();
    }
    let declared_expired = t.declared_expiry.is_some_and(|at| at <= (run.env.clock)());
    authenticated::datacenter(method, base_path, &who, declared_expired)?;
    if let datacenter::WhoAmI::Accepted { user, .. } = who {
        identity.user = Some(user);
    }
    if let (Credential::AccessToken { token_id, .. }, Some(user)) = (c, identity.user.clone()) {
        identity.kind = Some("http_access_token".into());
        if let Some(meta) = datacenter::token_metadata(api, &user, token_id.as_deref()).await? {
            identity.kind = Some("personal_access_token".into());
            identity.permissions = Some(meta.permissions);
            identity.expires_at = meta.expires_at;
        }
    } else {
        identity.kind = Some("password".into());
    }
    Ok(())
}

fn credential_info(
    method: AuthMethod,
    identity: &Identity,
    declared: Option<jiff::Timestamp>,
) -> CredentialInfo {
    let (expires_at, source) = match (identity.expires_at, declared) {
        (Some(t), _) => (Some(t), ExpirySource::Bitbucket),
        (None, Some(t)) => (Some(t), ExpirySource::Declared),
        (None, None) => (None, ExpirySource::Unknown),
    };
    CredentialInfo {
        expiry_source: Some(source),
        withheld_since: None,
        method: format!("{method:?}"),
        kind: identity.kind.clone(),
        scopes: identity.scopes.iter().flatten().cloned().collect(),
        permissions: identity
            .permissions
            .iter()
            .flatten()
            .map(|p| p.as_str().to_string())
            .collect(),
        expires_at: expires_at.map(|t| t.to_string()),
    }
}
