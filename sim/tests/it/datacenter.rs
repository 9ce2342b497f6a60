//! Bitbucket Data Center behaviour (docs/design/bitbucket-api.md, "Bitbucket Server / Data Center").

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

fn version(v: &str, extra: &str) -> String {
    FIXTURE.replacen(
        "datacenter:\n  version: 9.2.0\n",
        &format!("datacenter:\n  version: \"{v}\"\n{extra}"),
        1,
    )
}

/// Bitbucket 10 serves a Bearer token it does not recognise as anonymous (tests/real-answers);
/// 9.x and older refuse it with 401 (the `authentication` test above).
#[tokio::test]
async fn version_10_serves_unrecognised_tokens_as_anonymous() {
    let sim = start(&version("10.x", "")).await;
    let mut c = sim.conn("dc", HOST).await;
    for t in ["nope", "BBDC-alice-revoked", "BBDC-alice-old"] {
        let r = c.get(PROPS, Some(&bearer(t))).await;
        assert_eq!(r.status, 200, "{t}");
        assert!(r.header("x-ausername").is_none(), "{t}");
        assert_eq!(r.json()["version"], "10.x");
        let r = c
            .get(
                "/rest/api/latest/repos?permission=REPO_READ",
                Some(&bearer(t)),
            )
            .await;
        assert_eq!(
            (r.status, r.json()),
            (
                200,
                json!({"size": 0, "limit": 25, "isLastPage": true, "start": 0, "values": []})
            )
        );
        let r = c.get("/rest/api/latest/users", Some(&bearer(t))).await;
        assert_eq!(r.status, 401);
        assert_eq!(
            r.json()["errors"][0]["exceptionName"],
            "com.atlassian.plugins.rest.api.security.exception.AuthenticationRequiredException"
        );
    }
    // A good token is still a user.
    let r = c.get(PROPS, Some(&bearer("BBDC-alice-admin"))).await;
    assert_eq!(r.header("x-ausername"), Some("alice"));
    let r = c
        .get("/rest/api/latest/users", Some(&bearer("BBDC-alice-admin")))
        .await;
    assert_eq!((r.status, r.json()["size"].as_u64()), (200, Some(2)));
    // The switch turns it off.
    let sim = start(&version("10.x", "  unrecognisedTokenAnonymous: false\n")).await;
    let r = sim.get("dc", HOST, PROPS, Some(&bearer("nope"))).await;
    assert_eq!((r.status, r.json()), (401, auth_failed()));
}

#[tokio::test]
async fn version_10_refuses_basic_passwords() {
    let sim = start(&version("10.4.1", "")).await;
    let mut c = sim.conn("dc", HOST).await;
    for auth in [
        basic("alice", "alice-pw"),
        basic("alice", "wrong"),
        basic("nobody", "x"),
    ] {
        let r = c.get(PROPS, Some(&auth)).await;
        assert_eq!(
            (r.status, r.json()),
            (
                403,
                json!({"message": "Basic Authentication has been disabled on this instance."})
            )
        );
        assert!(
            r.header("content-type")
                .unwrap()
                .starts_with("application/json")
        );
    }
    assert!(sim.running.failed_logins().is_empty(), "refused unchecked");
    // Re-enabled: the password is checked again.
    let sim = start(&version("10.4.1", "  basicAuthDisabled: false\n")).await;
    let mut c = sim.conn("dc", HOST).await;
    assert_eq!(
        c.get(PROPS, Some(&basic("alice", "alice-pw")))
            .await
            .header("x-ausername"),
        Some("alice")
    );
    let r = c.get(PROPS, Some(&basic("alice", "wrong"))).await;
    assert_eq!((r.status, r.json()), (401, auth_failed()));
    // 9.x can disable it too.
    let sim = start(&version("9.2.0", "  basicAuthDisabled: true\n")).await;
    let r = sim
        .get("dc", HOST, PROPS, Some(&basic("alice", "alice-pw")))
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn captcha_after_failed_logins() {
    let sim = start(&version("9.2.0", "  captchaAfterFailures: 3\n")).await;
    let mut c = sim.conn("dc", HOST).await;
    let repo = "/rest/api/latest/projects/PROJ/repos/app";
    // A success resets the count.
    for _ in 0..2 {
        assert_eq!(
            c.get(repo, Some(&basic("alice", "wrong"))).await.status,
            401
        );
    }
    assert_eq!(sim.running.failed_logins().get("alice"), Some(&2));
    assert_eq!(
        c.get(repo, Some(&basic("alice", "alice-pw"))).await.status,
        200
    );
    assert!(sim.running.failed_logins().is_empty());
    for _ in 0..3 {
        let r = c.get(repo, Some(&basic("Alice", "wrong"))).await;
        assert_eq!((r.status, r.json()), (401, auth_failed()));
    }
    assert_eq!(sim.running.captcha_users(), ["alice"]);
    // Now even the right password is refused, with the denied reason.
    let r = c.get(repo, Some(&basic("alice", "alice-pw"))).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json()["errors"][0]["exceptionName"],
        "com.atlassian.bitbucket.auth.CaptchaRequiredAuthenticationException"
    );
    assert_eq!(
        r.header("x-authentication-denied-reason"),
        Some(format!("CAPTCHA_CHALLENGE; login-url=https://{HOST}/login").as_str())
    );
    // Tokens are not behind the CAPTCHA; other users are not either.
    assert_eq!(
        c.get(repo, Some(&bearer("BBDC-alice-admin"))).await.status,
        200
    );
    assert_eq!(c.get(repo, Some(&basic("bob", "bob-pw"))).await.status, 200);
    sim.running.reset_failed_logins(Some("alice"));
    assert!(sim.running.captcha_users().is_empty());
    assert_eq!(
        c.get(repo, Some(&basic("alice", "alice-pw"))).await.status,
        200
    );
    // Default: 5, as Bitbucket.
    let sim = start_default().await;
    let mut c = sim.conn("dc", HOST).await;
    for _ in 0..5 {
        c.get(PROPS, Some(&basic("bob", "wrong"))).await;
    }
    assert_eq!(sim.running.captcha_users(), ["bob"]);
}

/// Outside /rest and /scm a token is redirected to the login page; Basic with a token instead
/// of the password is 401 and counts as a failed login.
#[tokio::test]
async fn web_pages_refuse_tokens() {
    let sim = start_default().await;
    let mut c = sim.conn("dc", HOST).await;
    let r = c
        .get(
            "/projects/PROJ/repos/app",
            Some(&bearer("BBDC-alice-admin")),
        )
        .await;
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("location"),
        Some(format!("https://{HOST}/login").as_str())
    );
    let r = c
        .get(
            "/projects/PROJ/repos/app",
            Some(&basic("alice", "BBDC-alice-admin")),
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(sim.running.failed_logins().get("alice"), Some(&1));
    let mut ctx = sim.plain("dcctx").await;
    let r = ctx
        .get("/bitbucket/dashboard", Some(&bearer("BBDC-alice-admin")))
        .await;
    assert_eq!(
        (r.status, r.header("location")),
        (302, Some("http://localhost/bitbucket/login"))
    );
}

#[tokio::test]
async fn rate_limit_token_bucket() {
    let sim = start(&version(
        "9.2.0",
        "  rateLimit: { bucketSize: 2, refillPerSecond: 1 }\n",
    ))
    .await;
    let mut c = sim.conn("dc", HOST).await;
    let auth = bearer("BBDC-alice-admin");
    assert_eq!(c.get(PROPS, Some(&auth)).await.status, 200);
    assert_eq!(c.get(PROPS, Some(&auth)).await.status, 200);
    let r = c.get(PROPS, Some(&auth)).await;
    assert_eq!((r.status, r.header("retry-after")), (429, Some("1")));
    // Per user, and anonymous requests are not limited.
    assert_eq!(c.get(PROPS, Some(&bearer("BBDC-bob"))).await.status, 200);
    for _ in 0..4 {
        assert_eq!(c.get(PROPS, None).await.status, 200);
    }
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(c.get(PROPS, Some(&auth)).await.status, 200);
}

#[tokio::test]
async fn admin_resources_need_a_global_permission() {
    let yaml = FIXTURE.replacen(
        "{ name: alice, password: alice-pw, id: 1,",
        "{ name: alice, password: alice-pw, globalPermission: SYS_ADMIN, id: 1,",
        1,
    );
    let sim = start(&yaml).await;
    let mut c = sim.conn("dc", HOST).await;
    let path = "/rest/api/1.0/admin/permissions/users";
    let r = c.get(path, Some(&basic("alice", "alice-pw"))).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["values"][0]["permission"], "SYS_ADMIN");
    // A project administrator's token (Bob's says PROJECT_ADMIN) is not an administrator.
    let r = c.get(path, Some(&bearer("BBDC-bob"))).await;
    assert_eq!((r.status, r.json()), (401, not_permitted()));
    let r = c.get(path, Some(&bearer("BBDC-alice-admin"))).await;
    assert_eq!(r.status, 401);
}
