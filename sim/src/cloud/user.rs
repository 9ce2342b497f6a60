//! Bitbucket Cloud's `GET /2.0/user`: the account a credential acts as (access tokens act as
//! none).

use crate::fixture::Cloud;
use crate::http::{self as h, Req, Resp};

use super::answers::{USER_ONLY, error_json};
use super::auth::{Identity, NEED_USER};
use super::shapes::user_json;

pub(super) fn get_user(_cloud: &Cloud, _req: &Req, id: Option<&Identity>, _segs: &[&str]) -> Resp {
    let Some(id) = id else {
        // Not documented; the OpenAPI description lists 401 "When the request wasn't authenticated".
        return h::json(401, &error_json("Unauthorized"));
    };
    // docs/design/bitbucket-api.md: access tokens get 403 on GET /2.0/user (they are not users).
    let Some(user) = id.user else {
        return h::json(403, &error_json(USER_ONLY));
    };
    if let Err(r) = id.require(NEED_USER) {
        return r;
    }
    h::json(200, &user_json(user))
}
