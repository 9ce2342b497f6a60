//! Bitbucket Data Center's access-token REST resource (`/rest/access-tokens/...`): a user's own
//! personal tokens, a project's or repository's tokens for its administrators, one or a page of
//! them, never the secret.

use serde_json::{Value, json};

use crate::fixture::{DcToken, DcTokenKind};
use crate::http::Resp;
use crate::state::lock;

use super::access::Level;
use super::answers::{errors, json, no_such_project, no_such_repository, not_permitted};
use super::auth::created_ms;
use super::context::{Ctx, paged};
use super::repos::find_project;
use super::users::{bot_json, user_json};

/// Token data, never the secret. `createdDate` and `lastAuthenticated` are epoch milliseconds as
/// Bitbucket sends them (Eclipse Che's BitbucketPersonalAccessToken reads them as `long`); the
/// OpenAPI description types `createdDate` as a date-time string.
fn token_json(ctx: &Ctx, index: usize, t: &DcToken) -> Value {
    let user = match t.kind {
        DcTokenKind::Personal => t
            .user
            .as_deref()
            .and_then(|n| ctx.dc.users.iter().find(|u| u.name.eq_ignore_ascii_case(n)))
            .map(|u| user_json(ctx, u))
            .unwrap_or(Value::Null),
        _ => bot_json(ctx, index, t),
    };
    let mut v = json!({
        "id": t.id,
        "name": t.name.clone().unwrap_or_else(|| format!("token-{}", t.id)),
        "createdDate": created_ms(t, ctx.started),
        "permissions": t.permissions.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
        "user": user,
    });
    if let Some(ms) = lock(ctx.last_auth).get(&index) {
        v["lastAuthenticated"] = json!(ms);
    }
    if let Some(d) = t.expiry_days {
        v["expiryDays"] = json!(d);
    }
    v
}

/// `GET /rest/access-tokens/latest/users/{userSlug}[/{tokenId}]`: only for the authenticated user
/// itself; anyone else gets 401 (a missing permission is 401 on Data Center).
pub(super) fn user_tokens(ctx: &Ctx, user_slug: &str, id: Option<&str>) -> Resp {
    let Some(me) = ctx.principal.user() else {
        return not_permitted();
    };
    if !me.slug().eq_ignore_ascii_case(user_slug) {
        return not_permitted();
    }
    let mine = ctx.dc.tokens.iter().enumerate().filter(|(_, t)| {
        t.kind == DcTokenKind::Personal
            && !t.revoked
            && t.user
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(&me.name))
    });
    one_or_page(ctx, mine, id)
}

/// `GET /rest/access-tokens/latest/projects/{key}[/repos/{slug}][/{tokenId}]`: needs
/// PROJECT_ADMIN (project tokens) or REPO_ADMIN (repository tokens).
pub(super) fn resource_tokens(ctx: &Ctx, key: &str, slug: Option<&str>, id: Option<&str>) -> Resp {
    let Some((_, p)) = find_project(ctx.dc, key) else {
        return no_such_project(key);
    };
    let level = match slug {
        None => ctx.principal.project_level(p),
        Some(s) => match p.repositories.iter().find(|r| r.slug == s) {
            Some(r) => ctx.principal.repo_level(p, r),
            None => return no_such_repository(&p.key, s),
        },
    };
    if level < Level::Admin {
        return not_permitted();
    }
    let wanted = if slug.is_some() {
        DcTokenKind::Repository
    } else {
        DcTokenKind::Project
    };
    let tokens = ctx.dc.tokens.iter().enumerate().filter(|(_, t)| {
        t.kind == wanted
            && !t.revoked
            && t.project
                .as_deref()
                .is_some_and(|k| k.eq_ignore_ascii_case(&p.key))
            && (slug.is_none() || t.repository.as_deref() == slug)
    });
    one_or_page(ctx, tokens, id)
}

fn one_or_page<'a>(
    ctx: &Ctx,
    tokens: impl Iterator<Item = (usize, &'a DcToken)>,
    id: Option<&str>,
) -> Resp {
    match id {
        None => paged(
            ctx.req,
            tokens.map(|(i, t)| token_json(ctx, i, t)).collect(),
        ),
        Some(id) => {
            let found = tokens.into_iter().find(|(_, t)| t.id == id);
            match found {
                Some((i, t)) => json(200, &token_json(ctx, i, t)),
                // Not confirmed: the exact message and exception of a missing token.
                None => errors(
                    404,
                    &format!("No access token exists with ID {id}."),
                    Some("com.atlassian.bitbucket.auth.NoSuchAccessTokenException"),
                ),
            }
        }
    }
}
