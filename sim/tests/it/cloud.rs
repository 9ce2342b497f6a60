//! Bitbucket Cloud behaviour (docs/design/bitbucket-api.md, "Bitbucket Cloud").

use serde_json::json;

use crate::common::{FIXTURE, basic, bearer, start, start_default};

const HOST: &str = "api.bitbucket.org";
const TOKEN_INVALID: &str = "Token is invalid, expired, or not supported for this endpoint.";
const SCOPES: &str = "Your credentials lack one or more required privilege scopes.";
const NO_REPO: &str = "You may not have access to this repository or it no longer exists in this workspace. If you think this repository exists and you have access, make sure you are authenticated.";

fn alice() -> String {
    basic("alice@example.com", "ATATT-alice-good")
}

#[tokio::test]
async fn api_token_user() {
    let sim = start_default().await;
    let r = sim.get("cloud", HOST, "/2.0/user", Some(&alice())).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-credential-type"), Some("api_token"));
    assert_eq!(
        r.header("x-oauth-scopes"),
        Some("read:user:bitbucket, read:repository:bitbucket, read:workspace:bitbucket")
    );
    assert_eq!(
        r.header("x-accepted-oauth-scopes"),
        Some("read:user:bitbucket")
    );
    let body = r.json();
    assert_eq!(body["type"], "user");
    assert_eq!(body["nickname"], "alice");
    assert_eq!(body["account_id"], "557058:aaaa");
    assert_eq!(body["uuid"], "{11111111-2222-4333-8444-555555555555}");
    assert_eq!(body["display_name"], "Alice Liddell");
}

#[tokio::test]
async fn api_token_scopes_do_not_imply_read() {
    let sim = start_default().await;
    let auth = basic("alice@example.com", "ATATT-alice-write-only");
    let r = sim.get("cloud", HOST, "/2.0/user", Some(&auth)).await;
    assert_eq!(r.status, 403);
    // The recorded scope 403 (tests/real-answers/answers.json `cloud-403-scope-user`) names the
    // scopes only in its body.
    for h in [
        "x-credential-type",
        "x-oauth-scopes",
        "x-accepted-oauth-scopes",
    ] {
        assert!(r.header(h).is_none(), "{h}");
    }
    assert_eq!(
        r.json(),
        json!({"type": "error", "error": {"message": SCOPES, "detail": {"granted": ["write:repository:bitbucket"], "required": ["read:user:bitbucket"]}}})
    );
    let r = sim
        .get("cloud", HOST, "/2.0/repositories/acme/app", Some(&auth))
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.json()["error"]["detail"]["required"],
        json!(["read:repository:bitbucket"])
    );
    // An endpoint the simulator does not serve still needs its scope.
    let r = sim
        .get(
            "cloud",
            HOST,
            "/2.0/repositories/acme/app/refs/branches",
            Some(&auth),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"]["message"], SCOPES);
}

#[tokio::test]
async fn scope_headers_on_scope_errors_switch() {
    let yaml = FIXTURE.replacen("cloud:\n", "cloud:\n  scopeHeadersOnScopeError: true\n", 1);
    let sim = start(&yaml).await;
    let auth = basic("alice@example.com", "ATATT-alice-write-only");
    let r = sim
        .get("cloud", HOST, "/2.0/repositories/acme/app", Some(&auth))
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.header("x-credential-type"), Some("api_token"));
    assert_eq!(
        r.header("x-accepted-oauth-scopes"),
        Some("read:repository:bitbucket")
    );
}

#[tokio::test]
async fn rejected_credentials() {
    let sim = start_default().await;
    let mut c = sim.conn("cloud", HOST).await;
    // An API token sent as Bearer.
    let r = c.get("/2.0/user", Some(&bearer("ATATT-alice-good"))).await;
    assert_eq!(
        (r.status, r.json()["error"]["message"].as_str()),
        (401, Some(TOKEN_INVALID))
    );
    // Revoked, expired and unknown tokens: one message.
    for t in ["ATCTT-revoked", "no-such-token"] {
        let r = c.get("/2.0/user", Some(&bearer(t))).await;
        assert_eq!(r.status, 401);
        assert_eq!(
            r.json(),
            json!({"type": "error", "error": {"message": TOKEN_INVALID}})
        );
    }
    for t in ["ATATT-alice-revoked", "ATATT-alice-expired"] {
        let r = c
            .get("/2.0/user", Some(&basic("alice@example.com", t)))
            .await;
        assert_eq!(
            (r.status, r.json()["error"]["message"].as_str()),
            (401, Some(TOKEN_INVALID))
        );
    }
    // A token created without scopes: the same text.
    let r = c
        .get(
            "/2.0/user",
            Some(&basic("alice@example.com", "ATATT-alice-no-scopes")),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["error"]["message"].as_str()),
        (401, Some(TOKEN_INVALID))
    );
    // Wrong password, an app password (username:secret), the token with the wrong user part:
    // plain text "Login failed ..." with a BitbucketCustom challenge (tests/real-answers).
    for auth in [
        basic("alice@example.com", "wrong"),
        basic("alice", "app-password-secret"),
        basic("alice", "ATATT-alice-good"),
        basic("bob@example.com", "ATATT-alice-good"),
    ] {
        let r = c.get("/2.0/user", Some(&auth)).await;
        assert_eq!(r.status, 401);
        assert_eq!(
            r.header("www-authenticate"),
            Some("BitbucketCustom realm=\"Bitbucket.org HTTP\"")
        );
        assert!(r.header("content-type").unwrap().starts_with("text/plain"));
        assert!(r.header("x-credential-type").is_none());
        assert!(
            r.text()
                .starts_with("Login failed due to incorrect login credentials or method.\n"),
            "{}",
            r.text()
        );
    }
    // The account password has its own text.
    for user in ["alice", "alice@example.com"] {
        let r = c
            .get("/2.0/user", Some(&basic(user, "alice-account-password")))
            .await;
        assert_eq!(r.status, 401);
        assert!(r.text().starts_with(
            "Bitbucket Cloud recently stopped supporting account passwords for API authentication."
        ));
    }
}

#[tokio::test]
async fn expired_oauth_access_token() {
    let yaml = FIXTURE.replacen("cloud:\n", "cloud:\n  oauthTokenTtlSeconds: 0\n", 1);
    let sim = start(&yaml).await;
    let mut c = sim.conn("cloud", "bitbucket.org").await;
    let r = c
        .post_form(
            "/site/oauth2/access_token",
            Some(&basic("private-key", "private-secret")),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(r.json()["expires_in"], 0);
    let token = r.json()["access_token"].as_str().unwrap().to_owned();
    let r = c.get("/api/2.0/user", Some(&bearer(&token))).await;
    assert_eq!(
        (r.status, r.json()),
        (
            401,
            json!({"type": "error", "error": {"message": "Access token expired."}})
        )
    );
    // An unknown token is still the generic text.
    let r = c
        .get("/api/2.0/user", Some(&bearer("sim-oauth-access-0-x")))
        .await;
    assert_eq!(r.json()["error"]["message"], TOKEN_INVALID);
}

#[tokio::test]
async fn access_tokens_are_not_users() {
    let sim = start_default().await;
    let r = sim
        .get("cloud", HOST, "/2.0/user", Some(&bearer("ATCTT-repo")))
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.header("x-credential-type"), Some("repo_access_token"));
    assert_eq!(r.header("x-oauth-scopes"), Some("repository, pullrequest"));
    assert_eq!(r.header("x-accepted-oauth-scopes"), Some("account"));
    let r = sim
        .get("cloud", HOST, "/2.0/user", Some(&bearer("ATCTT-workspace")))
        .await;
    assert_eq!(
        r.header("x-credential-type"),
        Some("workspace_access_token")
    );
    let r = sim
        .get("cloud", HOST, "/2.0/user", Some(&bearer("ATCTT-project")))
        .await;
    assert_eq!(r.header("x-credential-type"), Some("project_access_token"));
}

#[tokio::test]
async fn repository_visibility() {
    let sim = start_default().await;
    let mut c = sim.conn("cloud", HOST).await;
    let r = c.get("/2.0/repositories/acme/app", Some(&alice())).await;
    assert_eq!(r.status, 200);
    let body = r.json();
    assert_eq!(body["full_name"], "acme/app");
    assert_eq!(body["type"], "repository");
    assert_eq!(body["mainbranch"]["name"], "main");

    // Repository token: its own repository only.
    assert_eq!(
        c.get("/2.0/repositories/acme/app", Some(&bearer("ATCTT-repo")))
            .await
            .status,
        200
    );
    let r = c
        .get("/2.0/repositories/acme/lib", Some(&bearer("ATCTT-repo")))
        .await;
    assert_eq!(
        (r.status, r.json()["error"]["message"].as_str()),
        (404, Some(NO_REPO))
    );
    // repository:admin does not imply repository (bitbucket-cloud-rest-api-scopes).
    let r = c
        .get(
            "/2.0/repositories/acme/app",
            Some(&bearer("ATCTT-repo-admin-only")),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.json()["error"]["detail"]["required"],
        json!(["repository"])
    );
    // Project token: repositories of its project.
    assert_eq!(
        c.get("/2.0/repositories/acme/lib", Some(&bearer("ATCTT-project")))
            .await
            .status,
        200
    );
    assert_eq!(
        c.get("/2.0/repositories/acme/app", Some(&bearer("ATCTT-project")))
            .await
            .status,
        404
    );
    // Anonymous: public repositories only.
    assert_eq!(c.get("/2.0/repositories/acme/site", None).await.status, 200);
    assert_eq!(c.get("/2.0/repositories/acme/app", None).await.status, 404);
    // Missing ones look like invisible ones.
    let r = c.get("/2.0/repositories/acme/nope", Some(&alice())).await;
    assert_eq!(
        r.json(),
        json!({"type": "error", "error": {"message": NO_REPO}})
    );
    // Bob has no access to lib.
    let bob = basic("bob@example.com", "ATATT-bob");
    assert_eq!(
        c.get("/2.0/repositories/acme/lib", Some(&bob)).await.status,
        404
    );
}

#[tokio::test]
async fn workspaces() {
    let sim = start_default().await;
    let mut c = sim.conn("cloud", HOST).await;
    let r = c.get("/2.0/workspaces/acme", Some(&alice())).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["slug"], "acme");
    assert_eq!(
        r.header("x-accepted-oauth-scopes"),
        Some("read:workspace:bitbucket")
    );
    let r = c.get("/2.0/workspaces/nope", Some(&alice())).await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json(),
        json!({"type": "error", "error": {"message": "No workspace with identifier 'nope'."}})
    );
    // Bob's token lacks read:workspace:bitbucket.
    let r = c
        .get(
            "/2.0/workspaces/acme",
            Some(&basic("bob@example.com", "ATATT-bob")),
        )
        .await;
    assert_eq!(r.status, 403);
    // Legacy credentials need no scope here.
    assert_eq!(
        c.get("/2.0/workspaces/acme", Some(&bearer("ATCTT-repo")))
            .await
            .status,
        200
    );
}

fn slugs(v: &serde_json::Value) -> Vec<String> {
    v["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["slug"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn role_listing() {
    let sim = start_default().await;
    let mut c = sim.conn("cloud", HOST).await;
    let list = |role: &str| format!("/2.0/repositories/acme?role={role}");
    let bob = basic("bob@example.com", "ATATT-bob");

    let r = c.get(&list("admin"), Some(&alice())).await;
    assert_eq!(r.status, 200);
    let body = r.json();
    assert_eq!(
        (
            body["pagelen"].as_u64(),
            body["page"].as_u64(),
            body["size"].as_u64()
        ),
        (Some(10), Some(1), Some(1))
    );
    assert_eq!(slugs(&body), ["app"]);
    assert_eq!(
        slugs(&c.get(&list("member"), Some(&alice())).await.json()),
        ["app", "lib"]
    );
    assert_eq!(
        slugs(&c.get(&list("admin"), Some(&bob)).await.json()),
        Vec::<String>::new()
    );
    assert_eq!(
        slugs(&c.get(&list("contributor"), Some(&bob)).await.json()),
        ["app"]
    );
    // No role: everything visible, public repositories included.
    assert_eq!(
        slugs(&c.get("/2.0/repositories/acme", Some(&bob)).await.json()),
        ["app", "site"]
    );
    // q: slug="x" (URL-encoded).
    let r = c
        .get(
            "/2.0/repositories/acme?role=member&q=slug%3D%22lib%22",
            Some(&alice()),
        )
        .await;
    assert_eq!(slugs(&r.json()), ["lib"]);
    let r = c
        .get("/2.0/repositories/acme?q=created_on%3E2020", Some(&alice()))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(c.get(&list("boss"), Some(&alice())).await.status, 400);
    // Access tokens: the role comes from the scopes, within their own resource.
    assert_eq!(
        slugs(
            &c.get(&list("member"), Some(&bearer("ATCTT-repo")))
                .await
                .json()
        ),
        ["app"]
    );
    assert_eq!(
        slugs(
            &c.get(&list("contributor"), Some(&bearer("ATCTT-repo")))
                .await
                .json()
        ),
        Vec::<String>::new()
    );
    assert_eq!(
        slugs(
            &c.get(&list("contributor"), Some(&bearer("ATCTT-project")))
                .await
                .json()
        ),
        ["lib"]
    );
    assert_eq!(
        slugs(
            &c.get(&list("admin"), Some(&bearer("ATCTT-workspace")))
                .await
                .json()
        ),
        ["app", "lib", "site"]
    );
    // Pagination.
    let r = c
        .get("/2.0/repositories/acme?pagelen=1", Some(&bob))
        .await
        .json();
    assert_eq!(slugs(&r), ["app"]);
    assert_eq!(
        r["next"],
        "https://api.bitbucket.org/2.0/repositories/acme?page=2&pagelen=1"
    );
    // Unknown workspace.
    assert_eq!(
        c.get("/2.0/repositories/nope", Some(&alice())).await.status,
        404
    );
}

#[tokio::test]
async fn oauth_client_credentials() {
    let sim = start_default().await;
    let mut c = sim.conn("cloud", "bitbucket.org").await;
    let path = "/site/oauth2/access_token";
    let grant = [("grant_type", "client_credentials")];

    let r = c
        .post_form(path, Some(&basic("private-key", "private-secret")), &grant)
        .await;
    assert_eq!(r.status, 200);
    let body = r.json();
    assert_eq!(
        body["scopes"],
        "account:write repository:admin pullrequest:write webhook"
    );
    assert_eq!(body["expires_in"], 7200);
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["state"], "client_credentials");
    assert!(body["refresh_token"].is_string());
    let token = body["access_token"].as_str().unwrap().to_owned();

    // The issued token works as Bearer with the consumer's scopes and user.
    let mut api = sim.conn("cloud", HOST).await;
    let r = api.get("/2.0/user", Some(&bearer(&token))).await;
    assert_eq!(r.status, 200, "account:write implies account");
    assert_eq!(r.header("x-credential-type"), Some("oauth2"));
    assert_eq!(
        r.header("x-oauth-scopes"),
        Some("account:write, repository:admin, pullrequest:write, webhook")
    );
    assert_eq!(r.json()["nickname"], "alice");
    // pullrequest:write implies repository:write, which implies repository.
    assert_eq!(
        api.get("/2.0/repositories/acme/app", Some(&bearer(&token)))
            .await
            .status,
        200
    );

    // Client credentials in the form work too; refresh works.
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    let r = c
        .post_form(
            path,
            None,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("client_id", "private-key"),
                ("client_secret", "private-secret"),
            ],
        )
        .await;
    assert_eq!(r.status, 200);

    let r = c
        .post_form(path, Some(&basic("public-key", "public-secret")), &grant)
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        json!({"error": "invalid_grant", "error_description": "Cannot use client_credentials with a consumer marked as \"public\". Calls for auto generated consumers should use urn:bitbucket:oauth2:jwt instead."})
    );
    // Bitbucket answers a wrong client with 400 unauthorized_client (tests/real-answers), not
    // RFC 6749's 401 invalid_client.
    for auth in [basic("private-key", "wrong"), basic("nobody", "x")] {
        let r = c.post_form(path, Some(&auth), &grant).await;
        assert_eq!(r.status, 400);
        assert_eq!(
            r.json(),
            json!({"error": "unauthorized_client", "error_description": "Invalid OAuth client credentials"})
        );
    }
    let r = c.post_form(path, None, &grant).await;
    assert_eq!(
        (r.status, r.json()),
        (
            400,
            json!({"error": "unauthorized_client", "error_description": "Requests must be authenticated using OAuth client credentials"})
        )
    );
    let r = c
        .post_form(
            path,
            Some(&basic("private-key", "private-secret")),
            &[("grant_type", "password")],
        )
        .await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
}

#[tokio::test]
async fn oauth_authorization_code() {
    let sim = start_default().await;
    let mut c = sim.conn("cloud", "bitbucket.org").await;
    let path = "/site/oauth2/access_token";
    let auth = basic("public-key", "public-secret");
    let exchange = |redirect: &'static str| {
        [
            ("grant_type", "authorization_code"),
            ("code", "bbconn-probe-invalid-code"),
            ("redirect_uri", redirect),
        ]
    };
    let r = c
        .post_form(path, Some(&auth), &exchange("https://evil.example.com/cb"))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        json!({"error": "invalid_request", "error_description": "redirect_uri does not match the redirect URI registered for this client"})
    );
    let r = c
        .post_form(path, Some(&auth), &exchange("https://tfe.example.com/cb"))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        json!({"error": "invalid_grant", "error_description": "The authorization code is invalid or has expired"})
    );
    // Bitbucket lets a request's redirect URL extend the registered one.
    let r = c
        .post_form(
            path,
            Some(&auth),
            &exchange("https://tfe.example.com/cb/extra"),
        )
        .await;
    assert_eq!(r.json()["error"], "invalid_grant");
}

#[tokio::test]
async fn rate_limit() {
    let yaml = FIXTURE.replacen("cloud:\n", "cloud:\n  rateLimitPerHour: 3\n", 1);
    let sim = start(&yaml).await;
    let mut c = sim.conn("cloud", HOST).await;
    for _ in 0..3 {
        assert_eq!(c.get("/2.0/user", Some(&alice())).await.status, 200);
    }
    let r = c.get("/2.0/user", Some(&alice())).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.text(), "Rate limit for this resource has been exceeded");
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    // As recorded: no Retry-After, but the credential's headers.
    assert!(r.header("retry-after").is_none());
    assert_eq!(r.header("x-credential-type"), Some("api_token"));
    assert_eq!(
        r.header("x-accepted-oauth-scopes"),
        Some("read:user:bitbucket")
    );
    // Per credential: another one is not limited. Rejected credentials are not counted.
    assert_eq!(
        c.get("/2.0/user", Some(&basic("bob@example.com", "ATATT-bob")))
            .await
            .status,
        200
    );
    assert_eq!(
        c.get("/2.0/user", Some(&basic("alice@example.com", "wrong")))
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn rate_limit_retry_after_switch() {
    let yaml = FIXTURE.replacen(
        "cloud:\n",
        "cloud:\n  rateLimitPerHour: 1\n  rateLimitRetryAfter: true\n",
        1,
    );
    let sim = start(&yaml).await;
    let mut c = sim.conn("cloud", HOST).await;
    assert_eq!(c.get("/2.0/user", Some(&alice())).await.status, 200);
    let r = c.get("/2.0/user", Some(&alice())).await;
    assert_eq!(r.status, 429);
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((3590..=3600).contains(&retry), "{retry}");
}

#[tokio::test]
async fn unknown_paths() {
    let sim = start_default().await;
    let r = sim
        .get("cloud", HOST, "/2.0/nothing/here", Some(&alice()))
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["type"], "error");
    assert_eq!(r.json()["error"]["message"], "Resource not found");
    assert!(
        r.json()["error"]["detail"]
            .as_str()
            .unwrap()
            .starts_with("There is no API hosted at this URL.")
    );
    // The API without its version prefix.
    let r = sim.get("cloud", HOST, "/user", Some(&alice())).await;
    assert_eq!(
        (r.status, r.json()),
        (
            403,
            json!({"type": "error", "error": {"message": "Forbidden"}})
        )
    );
    // A Data Center path on a Cloud-only listener.
    assert_eq!(
        sim.get(
            "cloud",
            HOST,
            "/rest/api/latest/application-properties",
            None
        )
        .await
        .status,
        404
    );
}
