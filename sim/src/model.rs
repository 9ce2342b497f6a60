//! Checks a fixture for references that do not resolve, before anything is bound.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use crate::error::SimError;
use crate::fixture::{CloudTokenKind, DcTokenKind, FaultKind, Fixture, ListenerKind};

pub(crate) fn validate(f: &Fixture) -> Result<(), SimError> {
    let err = |m: String| Err(SimError::Fixture(m));
    let mut names = BTreeSet::new();
    for l in &f.listeners {
        if !names.insert(l.name.as_str()) {
            return err(format!("listener name {:?} is used twice", l.name));
        }
        if !l.base_path.is_empty() && !l.base_path.starts_with('/') {
            return err(format!("listener {}: basePath must start with '/'", l.name));
        }
    }
    for l in &f.listeners {
        if l.kind == ListenerKind::ConnectProxy {
            for (target, to) in &l.routes {
                if !names.contains(to.as_str()) && to.parse::<SocketAddr>().is_err() {
                    return err(format!(
                        "listener {}: route {target} -> {to}: no listener of that name, nor an ip:port",
                        l.name
                    ));
                }
            }
        }
    }

    let cloud_users: BTreeSet<&str> = f.cloud.users.iter().map(|u| u.username.as_str()).collect();
    let workspaces: BTreeSet<&str> = f.cloud.workspaces.iter().map(|w| w.slug.as_str()).collect();
    for t in &f.cloud.tokens {
        match t.kind {
            CloudTokenKind::ApiToken => match &t.user {
                Some(u) if cloud_users.contains(u.as_str()) => {}
                _ => {
                    return err(format!(
                        "cloud API token {:?}: `user` must name a cloud user",
                        t.value
                    ));
                }
            },
            _ => match &t.workspace {
                Some(w) if workspaces.contains(w.as_str()) => {}
                _ => {
                    return err(format!(
                        "cloud access token {:?}: `workspace` must name a workspace",
                        t.value
                    ));
                }
            },
        }
        if t.kind == CloudTokenKind::RepositoryAccessToken && t.repository.is_none() {
            return err(format!(
                "cloud repository access token {:?}: `repository` is required",
                t.value
            ));
        }
        if t.kind == CloudTokenKind::ProjectAccessToken
            && t.project.is_none()
            && t.repository.is_none()
        {
            return err(format!(
                "cloud project access token {:?}: `project` is required",
                t.value
            ));
        }
    }
    for c in &f.cloud.oauth_consumers {
        if let Some(u) = &c.user
            && !cloud_users.contains(u.as_str())
        {
            return err(format!(
                "OAuth consumer {}: user {u} is not a cloud user",
                c.key
            ));
        }
    }

    let dc_users: BTreeSet<String> = f.datacenter.users.iter().map(|u| u.slug()).collect();
    for t in &f.datacenter.tokens {
        match t.kind {
            DcTokenKind::Personal => match &t.user {
                Some(u) if dc_users.contains(&u.to_lowercase()) => {}
                _ => {
                    return err(format!(
                        "DC token {}: `user` must name a Data Center user",
                        t.id
                    ));
                }
            },
            DcTokenKind::Project | DcTokenKind::Repository => {
                let Some(key) = &t.project else {
                    return err(format!("DC token {}: `project` is required", t.id));
                };
                let Some(p) = f
                    .datacenter
                    .projects
                    .iter()
                    .find(|p| p.key.eq_ignore_ascii_case(key))
                else {
                    return err(format!("DC token {}: no project {key}", t.id));
                };
                if t.kind == DcTokenKind::Repository {
                    match &t.repository {
                        Some(r) if p.repositories.iter().any(|x| x.slug == *r) => {}
                        _ => {
                            return err(format!(
                                "DC token {}: `repository` must name a repository of {key}",
                                t.id
                            ));
                        }
                    }
                }
            }
        }
    }

    for (i, fault) in f.faults.iter().enumerate() {
        if let Some(l) = &fault.listener
            && !names.contains(l.as_str())
        {
            return err(format!("fault {i}: no listener {l}"));
        }
        if fault.kind == FaultKind::Redirect && fault.location.is_none() {
            return err(format!("fault {i}: a redirect needs `location`"));
        }
        if fault.kind == FaultKind::Slow && fault.delay_ms.is_none() {
            return err(format!("fault {i}: slow needs `delayMs`"));
        }
        if let Some(s) = fault.status
            && !(100..=599).contains(&s)
        {
            return err(format!("fault {i}: status {s} is not an HTTP status"));
        }
    }
    Ok(())
}
