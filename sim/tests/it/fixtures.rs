//! The demo fixture parses, references resolve, and it serves (on ephemeral ports here).

use std::path::PathBuf;

use bbconn_sim::fixture::{CloudTokenKind, DcTokenKind};
use bbconn_sim::{Fixture, Pki, Simulator};

use crate::common::{Conn, basic, bearer};

fn demo() -> Fixture {
    Fixture::from_file(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo.yaml"))
        .unwrap()
}

#[test]
fn demo_covers_every_kind() {
    let f = demo();
    let fixed: Vec<u16> = f.listeners.iter().map(|l| l.bind.port()).collect();
    assert!(fixed.iter().all(|p| *p != 0), "the demo uses fixed ports");
    for kind in [
        CloudTokenKind::ApiToken,
        CloudTokenKind::RepositoryAccessToken,
        CloudTokenKind::ProjectAccessToken,
        CloudTokenKind::WorkspaceAccessToken,
    ] {
        assert!(f.cloud.tokens.iter().any(|t| t.kind == kind), "{kind:?}");
    }
    for kind in [
        DcTokenKind::Personal,
        DcTokenKind::Project,
        DcTokenKind::Repository,
    ] {
        assert!(
            f.datacenter.tokens.iter().any(|t| t.kind == kind),
            "{kind:?}"
        );
    }
    assert!(f.cloud.tokens.iter().any(|t| t.revoked) && f.cloud.tokens.iter().any(|t| t.expired));
    assert!(f.datacenter.tokens.iter().any(|t| t.revoked));
    assert!(f.cloud.oauth_consumers.iter().any(|c| c.private));
    assert!(f.cloud.oauth_consumers.iter().any(|c| !c.private));
    assert!(!f.datacenter.oauth_clients.is_empty());
}

#[tokio::test]
async fn demo_serves() {
    let mut f = demo();
    for l in &mut f.listeners {
        l.bind.set_port(0);
    }
    let pki = Pki::new();
    let running = Simulator::start(f, &pki).await.unwrap();
    let ca = pki.ca_pem();
    let mut c = Conn::connect(
        running.addr("main").unwrap(),
        "api.bitbucket.org",
        Some(&ca),
    )
    .await
    .unwrap();
    let r = c
        .get(
            "/2.0/user",
            Some(&basic("alice@example.com", "ATATT-FAKE-demo-alice-read")),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = c
        .get(
            "/2.0/user",
            Some(&basic("carol@example.com", "ATATT-FAKE-demo-ratelimited")),
        )
        .await;
    assert_eq!((r.status, r.header("retry-after")), (429, Some("30")));
    let r = c
        .get(
            "/rest/api/latest/repos?permission=REPO_ADMIN",
            Some(&bearer("BBDC-FAKE-demo-alice-admin")),
        )
        .await;
    assert_eq!(
        r.json()["size"],
        3,
        "archived repositories are left out by default"
    );
    let r = c
        .get(
            "/rest/api/latest/application-properties",
            Some(&bearer("BBDC-FAKE-demo-alice-expired")),
        )
        .await;
    assert_eq!(r.status, 401);
    let mut plain = Conn::connect(running.addr("dc-http").unwrap(), "localhost", None)
        .await
        .unwrap();
    assert_eq!(
        plain
            .get("/bitbucket/rest/api/latest/application-properties", None)
            .await
            .status,
        200
    );
    running.shutdown().await;
}
