//! bbconn: Bitbucket connections, checked declaratively.
//!
//! Where a cause is decided: `catalogue` lists them all; each check's module under `checks/`
//! decides its own (`checks/answers.rs` the "any check" causes of a failed request); `engine`
//! runs them in order, one step per module under `engine/pipeline/`.

pub mod api;
pub mod bitbucket;
pub mod catalogue;
pub mod checks;
pub mod cli;
pub mod credential;
pub mod duration;
pub mod engine;
pub mod finding;
pub mod manifests;
pub mod memo;
pub mod net_args;
pub mod operator;
pub mod profiles;
pub mod scrub;
pub mod ssh;
pub mod status;
pub mod telemetry;
pub mod transport;
pub mod withhold;

use kube::CustomResourceExt;

/// The CRD as YAML, exactly as `crds/` holds it.
pub fn crd_yaml() -> Result<String, String> {
    let crd = api::BitbucketConnection::crd();
    serde_saphyr::to_string(&crd).map_err(|e| e.to_string())
}
