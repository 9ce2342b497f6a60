//! What every Bitbucket Data Center endpoint is handed (the caller, the fixture, the base URL
//! its links start with), and the paged wrapper its lists are answered in.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{Value, json};

use crate::fixture::DataCenter;
use crate::http::{Req, Resp};

use super::answers::json;
use super::auth::Principal;

pub(super) struct Ctx<'a> {
    pub(super) dc: &'a DataCenter,
    pub(super) req: &'a Req,
    pub(super) principal: Principal<'a>,
    /// `scheme://host[:port]{basePath}` for links.
    pub(super) base: String,
    pub(super) started: i64,
    pub(super) last_auth: &'a Mutex<HashMap<usize, i64>>,
    pub(super) ssh_port: Option<u16>,
}

/// A page: `{size, limit, isLastPage, start, values, nextPageStart?}` with `start`/`limit` from
/// the query (default 0 and 25).
pub(super) fn paged(req: &Req, all: Vec<Value>) -> Resp {
    let start: usize = req
        .query_param("start")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let limit: usize = req
        .query_param("limit")
        .and_then(|s| s.parse().ok())
        .map(|l: usize| l.clamp(1, 1000))
        .unwrap_or(25);
    let total = all.len();
    let values: Vec<Value> = all.into_iter().skip(start).take(limit).collect();
    let last = start + values.len() >= total;
    let mut body = json!({"size": values.len(), "limit": limit, "isLastPage": last, "start": start, "values": values});
    if !last {
        body["nextPageStart"] = json!(start + limit);
    }
    json(200, &body)
}
