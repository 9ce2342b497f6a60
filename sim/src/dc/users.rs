//! Bitbucket Data Center's users: `GET /rest/api/latest/users`, the global permissions list,
//! and the shapes of a user and of the bot user a project or repository token acts as.

use serde_json::{Value, json};

use crate::fixture::{DcGlobalPermission, DcToken, DcUser};
use crate::http::Resp;

use super::answers::{auth_required, not_permitted};
use super::auth::{Principal, bot_id, bot_name, user_id};
use super::context::{Ctx, paged};

/// Schema `RestApplicationUser`.
pub(super) fn user_json(ctx: &Ctx, u: &DcUser) -> Value {
    let mut v = json!({
        "name": u.name,
        "active": true,
        "displayName": u.display_name.clone().unwrap_or_else(|| u.name.clone()),
        "id": user_id(ctx.dc, u),
        "slug": u.slug(),
        "type": "NORMAL",
        "links": {"self": [{"href": format!("{}/users/{}", ctx.base, u.slug())}]},
    });
    if let Some(e) = &u.email {
        v["emailAddress"] = json!(e);
    }
    v
}

pub(super) fn bot_json(ctx: &Ctx, index: usize, t: &DcToken) -> Value {
    let name = bot_name(t);
    json!({
        "name": name,
        "active": true,
        "displayName": t.name.clone().unwrap_or_else(|| name.clone()),
        "id": bot_id(index),
        "slug": name.to_lowercase(),
        "type": "SERVICE",
        "links": {"self": [{"href": format!("{}/bots/{}", ctx.base, name.to_lowercase())}]},
    })
}

/// `GET /rest/api/latest/users`: any authenticated caller; anonymous callers get 401
/// AuthenticationRequiredException (tests/real-answers/answers.json `dc-401-anonymous-required`).
pub(super) fn list_users(ctx: &Ctx) -> Resp {
    if matches!(ctx.principal, Principal::Anonymous) {
        return auth_required();
    }
    let filter = ctx.req.query_param("filter").map(|f| f.to_lowercase());
    let values = ctx
        .dc
        .users
        .iter()
        .filter(|u| {
            filter
                .as_ref()
                .is_none_or(|f| u.slug().contains(f.as_str()))
        })
        .map(|u| user_json(ctx, u))
        .collect();
    paged(ctx.req, values)
}

/// `GET /rest/api/latest/admin/permissions/users`: needs the global ADMIN permission; anyone
/// else gets 401 (tests/real-answers/answers.json `dc-401-not-permitted-admin`: a project
/// administrator's token). Tokens carry no global permission.
pub(super) fn admin_users(ctx: &Ctx) -> Resp {
    let admin = match ctx.principal {
        Principal::Anonymous => return auth_required(),
        Principal::Password(u) => u.global_permission >= Some(DcGlobalPermission::Admin),
        _ => false,
    };
    if !admin {
        return not_permitted();
    }
    let values = ctx
        .dc
        .users
        .iter()
        .filter_map(|u| {
            let p = u.global_permission?;
            Some(json!({"user": user_json(ctx, u), "permission": p.as_str()}))
        })
        .collect();
    paged(ctx.req, values)
}
