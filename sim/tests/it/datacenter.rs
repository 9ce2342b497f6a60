//! Bitbucket Data Center behaviour (BITBUCKET-API.md, "Bitbucket Server / Data Center").

use serde_json::{Value, json};

use crate::common::{FIXTURE, basic, bearer, start, start_default};

const HOST: &str = "bitbucket.internal";
const PROPS: &str = "/rest/api/latest/application-properties";

fn auth_failed() -> Value {
    json!({"errors": [{"context": null, "message": "Authentication failed. Please check your credentials and try again.", "exceptionName": "com.atlassian.bitbucket.auth.IncorrectPasswordAuthenticationException"}]})
}

fn not_permitted() -> Value {
    json!({"errors": [{"context": null, "message": "You are not permitted to access this resource", "exceptionName": "com.atlassian.bitbucket.AuthorisationException"}]})
}

fn slugs(v: &Value) -> Vec<String> {
    v["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["project"]["key"].as_str().unwrap(),
                r["slug"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test]
async fn application_properties() {
    let sim = start_default().await;
    let mut c = sim.conn("dc", HOST).await;
    let r = c.get(PROPS, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!({"version": "9.2.0", "buildNumber": "9002000", "buildDate": "1719792000000", "displayName": "Bitbucket"})
    );
    assert!(r.header("x-ausername").is_none());
    // With credentials, they are checked.
    let r = c.get(PROPS, Some(&bearer("nope"))).await;
    assert_eq!((r.status, r.json()), (401, auth_failed()));
    let r = c.get(PROPS, Some(&bearer("BBDC-alice-admin"))).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        (r.header("x-ausername"), r.header("x-auserid")),
        (Some("alice"), Some("1"))
    );
}

#[tokio::test]
async fn authentication() {
    let sim = start_default().await;
    let mut c = sim.conn("dc", HOST).await;
    let repo = "/rest/api/latest/projects/PROJ/repos/app";
    // Personal token: Bearer, or Basic with its user; the password works too.
    for auth in [
        bearer("BBDC-alice-admin"),
        basic("alice", "BBDC-alice-admin"),
        basic("alice", "alice-pw"),
    ] {
        let r = c.get(repo, Some(&auth)).await;
        assert_eq!(r.status, 200, "{auth}");
        assert_eq!(r.header("x-ausername"), Some("alice"));
    }
    // Project and repository tokens are Bearer only; they act as a bot user.
    let r = c.get(repo, Some(&bearer("BBDC-proj"))).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-ausername"), Some("project-token-PROJ"));
    assert!(r.header("x-auserid").unwrap().parse::<u32>().is_ok());
    for auth in [
        basic("alice", "BBDC-proj"),
        basic("alice", "BBDC-bob"),
        basic("alice", "wrong"),
        basic("nobody", "alice-pw"),
        bearer("BBDC-alice-revoked"),
        "Token abc".to_owned(),
    ] {
        let r = c.get(repo, Some(&auth)).await;
        assert_eq!((r.status, r.json()), (401, auth_failed()), "{auth}");
        assert!(r.header("x-ausername").is_none());
    }
    // Expired (createdDate + expiryDays in the past).
    let r = c.get(PROPS, Some(&bearer("BBDC-alice-old"))).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json()["errors"][0]["message"],
        "The access token has expired."
    );
}

#[tokio::test]
async fn expired_token_without_message() {
    let yaml = FIXTURE.replacen(
        "datacenter:\n",
        "datacenter:\n  expiredTokenMessage: false\n",
        1,
    );
    let sim = start(&yaml).await;
    let r = sim
        .get("dc", HOST, PROPS, Some(&basic("alice", "BBDC-alice-old")))
        .await;
    assert_eq!((r.status, r.json()), (401, auth_failed()));
}

#[tokio::test]
async fn repositories() {
    let sim = start_default().await;
    let mut c = sim.conn("dc", HOST).await;
    let r = c
        .get(
            "/rest/api/latest/projects/PROJ/repos/app",
            Some(&bearer("BBDC-alice-read")),
        )
        .await;
    let body = r.json();
    assert_eq!(body["slug"], "app");
    assert_eq!(body["scmId"], "git");
    assert_eq!(body["state"], "AVAILABLE");
    assert_eq!(body["project"]["key"], "PROJ");
    assert_eq!(
        body["links"]["clone"][0]["href"].as_str().unwrap(),
        format!("https://{HOST}/scm/proj/app.git")
    );
    // The repository token sees only its repository.
    let r = c
        .get(
            "/rest/api/latest/projects/PROJ/repos/app",
            Some(&bearer("BBDC-repo")),
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json(),
        json!({"errors": [{"context": null, "message": "Repository PROJ/app does not exist.", "exceptionName": "com.atlassian.bitbucket.repository.NoSuchRepositoryException"}]})
    );
    assert_eq!(
        c.get(
            "/rest/api/latest/projects/PROJ/repos/docs",
            Some(&bearer("BBDC-repo"))
        )
        .await
        .status,
        200
    );
    // Anonymous: nothing is public.
    assert_eq!(
        c.get("/rest/api/latest/projects/PROJ/repos/app", None)
            .await
            .status,
        404
    );
    let r = c
        .get(
            "/rest/api/latest/projects/NOPE/repos/app",
            Some(&bearer("BBDC-alice-read")),
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json()["errors"][0]["exceptionName"],
        "com.atlassian.bitbucket.project.NoSuchProjectException"
    );
}

#[tokio::test]
async fn effective_permission() {
    let sim = start_default().await;
    let mut c = sim.conn("dc", HOST).await;
    let repos = |perm: &str| format!("/rest/api/latest/repos?permission={perm}");
    let mut list = async |perm: &str, auth: String| {
        let r = c.get(&repos(perm), Some(&auth)).await;
        assert_eq!(r.status, 200);
        slugs(&r.json())
    };
    // min(user access, token permission); PROJECT_ADMIN on OPS gives REPO_ADMIN there.
    assert_eq!(
        list("REPO_ADMIN", basic("alice", "alice-pw")).await,
        ["PROJ/app", "OPS/infra"]
    );
    assert_eq!(
        list("REPO_ADMIN", bearer("BBDC-alice-admin")).await,
        ["PROJ/app", "OPS/infra"]
    );
    assert_eq!(
        list("REPO_ADMIN", bearer("BBDC-alice-read")).await,
        Vec::<String>::new()
    );
    assert_eq!(
        list("REPO_READ", bearer("BBDC-alice-read")).await,
        ["PROJ/app", "PROJ/docs", "OPS/infra"]
    );
    // Bob's token says PROJECT_ADMIN, but Bob can only write to app.
    assert_eq!(list("REPO_WRITE", bearer("BBDC-bob")).await, ["PROJ/app"]);
    assert_eq!(
        list("REPO_ADMIN", bearer("BBDC-bob")).await,
        Vec::<String>::new()
    );
    // Project token: its project, at its permission.
    assert_eq!(
        list("REPO_WRITE", bearer("BBDC-proj")).await,
        ["PROJ/app", "PROJ/docs"]
    );
    assert_eq!(
        list("REPO_ADMIN", bearer("BBDC-proj")).await,
        Vec::<String>::new()
    );
    assert_eq!(list("REPO_ADMIN", bearer("BBDC-repo")).await, ["PROJ/docs"]);

    let r = c
        .get(
            "/rest/api/latest/repos?permission=REPO_READ&projectkey=proj&name=DOCS",
            Some(&bearer("BBDC-alice-read")),
        )
        .await;
    assert_eq!(slugs(&r.json()), ["PROJ/docs"]);
    let r = c
        .get(
            "/rest/api/latest/repos?permission=SUPERUSER",
            Some(&bearer("BBDC-alice-read")),
        )
        .await;
    assert_eq!(r.status, 400);

    // Paging.
    let r = c
        .get(
            "/rest/api/latest/repos?limit=2",
            Some(&basic("alice", "alice-pw")),
        )
        .await
        .json();
    assert_eq!(
        (
            r["size"].as_u64(),
            r["limit"].as_u64(),
            r["isLastPage"].as_bool(),
            r["start"].as_u64(),
            r["nextPageStart"].as_u64()
        ),
        (Some(2), Some(2), Some(false), Some(0), Some(2))
    );
    let r = c
        .get(
            "/rest/api/latest/repos?limit=2&start=2",
            Some(&basic("alice", "alice-pw")),
        )
        .await
        .json();
    assert_eq!(
        (r["size"].as_u64(), r["isLastPage"].as_bool()),
        (Some(1), Some(true))
    );
    assert!(r.get("nextPageStart").is_none());

    // Projects by permission.
    let r = c
        .get(
            "/rest/api/latest/projects?permission=PROJECT_ADMIN",
            Some(&basic("alice", "alice-pw")),
        )
        .await;
    let keys: Vec<_> = r.json()["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].clone())
        .collect();
    assert_eq!(keys, [json!("OPS")]);
    let r = c
        .get("/rest/api/latest/projects", Some(&bearer("BBDC-repo")))
        .await;
    assert_eq!(r.json()["size"], 1);
}

#[tokio::test]
async fn repository_permissions_need_admin() {
    let sim = start_default().await;
    let mut c = sim.conn("dc", HOST).await;
    let path = "/rest/api/latest/projects/PROJ/repos/app/permissions/users";
    let r = c.get(path, Some(&bearer("BBDC-alice-read"))).await;
    assert_eq!((r.status, r.json()), (401, not_permitted()));
    let r = c.get(path, Some(&bearer("BBDC-alice-admin"))).await;
    assert_eq!(r.status, 200);
    let perms: Vec<_> = r.json()["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["permission"].clone())
        .collect();
    assert_eq!(perms, [json!("REPO_ADMIN"), json!("REPO_WRITE")]);
}

#[tokio::test]
async fn access_token_data() {
    let sim = start_default().await;
    let mut c = sim.conn("dc", HOST).await;
    let auth = bearer("BBDC-alice-admin");
    let r = c
        .get("/rest/access-tokens/latest/users/alice", Some(&auth))
        .await;
    assert_eq!(r.status, 200);
    let body = r.json();
    let ids: Vec<_> = body["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();
    // The revoked token is gone; the expired one is still listed.
    assert_eq!(ids, ["100000000001", "100000000002", "100000000004"]);
    assert!(!r.text().contains("BBDC-"), "token values never appear");
    let t = &body["values"][0];
    assert_eq!(t["permissions"], json!(["PROJECT_READ", "REPO_ADMIN"]));
    assert_eq!(t["expiryDays"], 90);
    assert_eq!(t["user"]["slug"], "alice");
    assert!(t["createdDate"].is_i64());
    assert!(t["lastAuthenticated"].is_i64(), "set by this very request");
    assert!(body["values"][1].get("lastAuthenticated").is_none());

    let r = c
        .get(
            "/rest/access-tokens/latest/users/alice/100000000002",
            Some(&auth),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["id"].as_str()),
        (200, Some("100000000002"))
    );
    let r = c
        .get(
            "/rest/access-tokens/latest/users/alice/100000000003",
            Some(&auth),
        )
        .await;
    assert_eq!(r.status, 404);
    // Only for the user itself.
    let r = c
        .get("/rest/access-tokens/latest/users/bob", Some(&auth))
        .await;
    assert_eq!((r.status, r.json()), (401, not_permitted()));
    let r = c
        .get(
            "/rest/access-tokens/latest/users/bob",
            Some(&bearer("BBDC-bob")),
        )
        .await;
    assert_eq!(r.status, 200, "user slugs are lower-case");
    assert_eq!(
        c.get("/rest/access-tokens/latest/users/alice", None)
            .await
            .status,
        401
    );
    // Project tokens need PROJECT_ADMIN.
    let r = c
        .get(
            "/rest/access-tokens/latest/projects/OPS",
            Some(&basic("alice", "alice-pw")),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = c
        .get(
            "/rest/access-tokens/latest/projects/PROJ",
            Some(&basic("alice", "alice-pw")),
        )
        .await;
    assert_eq!(r.status, 401);
    let r = c
        .get(
            "/rest/access-tokens/latest/projects/PROJ/repos/docs/100000000006",
            Some(&bearer("BBDC-repo")),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["user"]["type"], "SERVICE");
}

#[tokio::test]
async fn oauth_application_link() {
    let sim = start_default().await;
    let mut c = sim.conn("dc", HOST).await;
    let path = "/rest/oauth2/latest/token";
    let code = |redirect: &'static str| {
        [
            ("grant_type", "authorization_code"),
            ("code", "bbconn-probe-invalid-code"),
            ("redirect_uri", redirect),
            ("client_id", "dc-client"),
            ("client_secret", "dc-secret"),
        ]
    };
    let good = "https://codescan.example.com/_codescan/oauth2/authorize";
    let r = c.post_form(path, None, &code(good)).await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let r = c
        .post_form(path, None, &code("https://codescan.example.com/other"))
        .await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let mut wrong = code(good);
    wrong[4].1 = "nope";
    let r = c.post_form(path, None, &wrong).await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (401, Some("invalid_client"))
    );
    // Basic client authentication.
    let r = c
        .post_form(
            path,
            Some(&basic("dc-client", "dc-secret")),
            &[("grant_type", "authorization_code"), ("code", "x")],
        )
        .await;
    assert_eq!(r.json()["error"], "invalid_grant");
    // No client-credentials grant on Data Center.
    let r = c
        .post_form(
            path,
            Some(&basic("dc-client", "dc-secret")),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
}

#[tokio::test]
async fn base_path_and_shared_listener() {
    let sim = start_default().await;
    let mut c = sim.plain("dcctx").await;
    assert_eq!(
        c.get("/bitbucket/rest/api/latest/application-properties", None)
            .await
            .status,
        200
    );
    let r = c.get("/rest/api/latest/application-properties", None).await;
    assert_eq!(r.status, 404);
    assert!(r.json()["errors"].is_array());
    let r = c
        .get(
            "/bitbucket/rest/api/latest/projects/PROJ/repos/app",
            Some(&basic("alice", "alice-pw")),
        )
        .await;
    assert!(
        r.json()["links"]["self"][0]["href"]
            .as_str()
            .unwrap()
            .ends_with("/bitbucket/projects/PROJ/repos/app/browse")
    );

    // One listener serving both flavours.
    let mut both = sim.conn("both", "bitbucket.example.com").await;
    assert_eq!(
        both.get("/rest/api/1.0/application-properties", None)
            .await
            .status,
        200
    );
    let r = both
        .get(
            "/2.0/user",
            Some(&basic("alice@example.com", "ATATT-alice-good")),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = both.get("/rest/api/latest/nothing", None).await;
    assert_eq!(r.status, 404);
    assert!(r.json()["errors"].is_array());
}
