//! The simulator reproduces every answer a real Bitbucket server gave
//! (`tests/real-answers/answers.json`), by behaviour: each record has a scenario here (a fixture
//! state and the request that should provoke it), sent over TLS to a running simulator, and the
//! answer is compared with the record the way `openapi.rs` compares JSON shapes:
//!
//! - status: equal;
//! - the headers that carry meaning ([`MEANINGFUL`]): present where the record has them (value
//!   equal; Content-Type by family, WWW-Authenticate by scheme and realm), absent where the
//!   record's headers are exact and lack them, plus what the scenario says the status and body
//!   imply where no headers were recorded;
//! - body: [`Body`], chosen from the record's `body_fidelity`.
//!
//! A record without a scenario fails the test, and so does a scenario without a record.

use std::collections::BTreeMap;

use http::Method;
use serde_json::Value;

use crate::common::{Resp, Sim, basic, bearer, start};

/// How a record's body is compared.
#[derive(Debug)]
enum Body {
    /// Exact JSON: equal as values (formatting aside).
    Equal,
    /// Exact text (a trailing newline aside).
    Text,
    /// Every key of the record exists in the answer with the same JSON type (arrays: by their
    /// first element; a recorded null matches anything), and these paths hold equal values.
    /// For records trimmed by their source, or answers of older versions with fewer fields.
    Shape(&'static [&'static str]),
    /// Only these paths exist in both with the same type (the first list), and these hold equal
    /// values (the second): for recordings of an older API generation with fields since retired.
    Paths(&'static [&'static str], &'static [&'static str]),
    /// The record quotes only an excerpt: these JSON paths of the answer hold these strings.
    Excerpt(&'static [(&'static str, &'static str)]),
    /// The record has no body (a HEAD, or not recorded).
    Skip,
}

/// Headers that carry meaning for a checker.
const MEANINGFUL: &[&str] = &[
    "content-type",
    "x-ausername",
    "x-auserid",
    "www-authenticate",
    "retry-after",
    "x-oauth-scopes",
    "x-credential-type",
    "x-accepted-oauth-scopes",
    "location",
    "x-authentication-denied-reason",
];

struct Case {
    id: &'static str,
    /// The fixture state and the request, in words (for the report and for failures).
    how: &'static str,
    body: Body,
    /// Headers the status and body imply where the record has none recorded.
    present: &'static [&'static str],
    absent: &'static [&'static str],
    /// Recorded headers compared for presence only (the note says why the value differs).
    loose: &'static [&'static str],
    /// Recorded headers not compared (the note says why).
    skip: &'static [&'static str],
    /// Why the record is checked only in part ("" when fully).
    note: &'static str,
}

const fn case(id: &'static str, how: &'static str, body: Body) -> Case {
    Case {
        id,
        how,
        body,
        present: &[],
        absent: &[],
        loose: &[],
        skip: &[],
        note: "",
    }
}

const NO_API: &str = "There is no API hosted at this URL.\n\nFor information about our API's, please refer to the documentation at: https://developer.atlassian.com/bitbucket/api/2/reference/";

fn cases() -> Vec<Case> {
    use Body::*;
    vec![
        // ------------------------------------------------------------------ Cloud
        Case {
            note: "recorded in 2016: website, location and four links have since left the user object; the identity fields are compared",
            ..case(
                "cloud-user-200-goscm",
                "Cloud user brydzewski with a read:user API token; GET /2.0/user, Basic email:token",
                Paths(
                    &[
                        "type",
                        "uuid",
                        "username",
                        "display_name",
                        "account_id",
                        "created_on",
                        "is_staff",
                        "links.self.href",
                        "links.html.href",
                        "links.avatar.href",
                        "links.repositories.href",
                    ],
                    &["type", "uuid", "username", "display_name", "account_id"],
                ),
            )
        },
        Case {
            note: "the repository object of a newer generation: override_settings, website and the branches/tags/source links (not in the OpenAPI description's closed links) are not served; the clone URL carries no user name",
            ..case(
                "cloud-repo-200-jenkins",
                "public repository amuniz/test-repos (project PUB, mainbranch master); GET it with an API token",
                Paths(
                    &[
                        "type",
                        "uuid",
                        "full_name",
                        "slug",
                        "name",
                        "is_private",
                        "scm",
                        "fork_policy",
                        "mainbranch.name",
                        "project.key",
                        "workspace.slug",
                        "owner.display_name",
                        "links.self.href",
                        "links.html.href",
                        "links.clone.0.href",
                        "links.clone.0.name",
                        "created_on",
                        "updated_on",
                        "size",
                        "has_issues",
                        "has_wiki",
                        "language",
                        "description",
                    ],
                    &[
                        "type",
                        "full_name",
                        "slug",
                        "name",
                        "is_private",
                        "scm",
                        "mainbranch.name",
                        "project.key",
                        "links.clone.0.name",
                    ],
                ),
            )
        },
        Case {
            note: "as cloud-repo-200-jenkins (a redacted recording: relative links, invented ids)",
            ..case(
                "cloud-repo-200-atlassian-python-api",
                "private repository TestWorkspace1/testrepository1 the user administers; GET it with an API token",
                Paths(
                    &[
                        "type",
                        "uuid",
                        "full_name",
                        "slug",
                        "name",
                        "is_private",
                        "scm",
                        "fork_policy",
                        "mainbranch.name",
                        "project.key",
                        "workspace.slug",
                        "links.html.href",
                        "links.clone.0.href",
                        "links.clone.0.name",
                        "created_on",
                        "updated_on",
                        "size",
                        "has_issues",
                        "has_wiki",
                        "language",
                        "description",
                    ],
                    &[
                        "type",
                        "full_name",
                        "slug",
                        "name",
                        "is_private",
                        "scm",
                        "mainbranch.name",
                        "project.key",
                        "links.clone.0.name",
                        "workspace.slug",
                    ],
                ),
            )
        },
        Case {
            loose: &["x-accepted-oauth-scopes"],
            note: "x-accepted-oauth-scopes: the simulator names the endpoint's scope (repository); this capture echoed the token's repository:write",
            ..case(
                "cloud-headers-kb-repo-access-token",
                "a repository access token with only repository:write; HEAD /2.0/repositories, Bearer",
                Skip,
            )
        },
        case(
            "cloud-401-token-invalid",
            "an unknown Bearer token; GET /2.0/repositories/amuniz/test-repos/pullrequests?pagelen=20&state=OPEN",
            Equal,
        ),
        case(
            "cloud-401-login-failed-text",
            "Basic with the account's email and a wrong secret; GET /2.0/user",
            Text,
        ),
        case(
            "cloud-401-www-authenticate-bitbucketcustom",
            "Basic username:app password (app passwords are retired); GET /2.0/user",
            Skip,
        ),
        case(
            "cloud-401-account-password",
            "Basic username:the account's own password; GET /2.0/repositories/amuniz/test-repos/refs/branches/master",
            Text,
        ),
        Case {
            absent: &[
                "x-credential-type",
                "x-oauth-scopes",
                "x-accepted-oauth-scopes",
            ],
            ..case(
                "cloud-403-scope-user",
                "an API token with the four repository/pull-request scopes and no read:user:bitbucket; GET /2.0/user, Basic email:token",
                Equal,
            )
        },
        Case {
            absent: &["x-credential-type", "x-oauth-scopes"],
            note: "`required` is the endpoint's real scope (repository for GET /2.0/repositories/{workspace}); the recording is a SonarQube test fixture that wrote `account`",
            ..case(
                "cloud-403-scope-sonarqube",
                "a private OAuth consumer with only the email scope, its client-credentials token; GET /2.0/repositories/amuniz (SonarQube's workspace check)",
                Shape(&["type", "error.message", "error.detail.granted"]),
            )
        },
        case(
            "cloud-403-forbidden-v1-user",
            "a good API token; GET /user (no /2.0)",
            Equal,
        ),
        case(
            "cloud-404-repo",
            "a good API token; GET /2.0/repositories/amuniz/no-such-repo",
            Equal,
        ),
        case(
            "cloud-404-workspace",
            "client-credentials token of a private consumer with pullrequest:write; GET /2.0/repositories/workspace (no such workspace)",
            Equal,
        ),
        case(
            "cloud-404-no-api",
            "a good API token; GET /2.0/no/api/here",
            Excerpt(&[
                ("error.message", "Resource not found"),
                ("error.detail", NO_API),
            ]),
        ),
        Case {
            loose: &["x-credential-type"],
            note: "x-credential-type: the simulator has no OAuth 1 consumers; the same consumer's OAuth 2 token says oauth2",
            ..case(
                "cloud-429-sharpbucket",
                "rateLimitPerHour 1; an OAuth consumer with account, team, pullrequest, issue, snippet, webhook; its token's second GET /2.0/repositories/amuniz",
                Text,
            )
        },
        Case {
            loose: &["x-credential-type", "x-accepted-oauth-scopes"],
            skip: &["x-oauth-scopes"],
            note: "recorded for a legacy API key, which has no scopes; the simulator's nearest is an API token, which has (granular) scopes, so x-oauth-scopes is sent and the credential type and accepted scope name differ",
            ..case(
                "cloud-429-jenkins",
                "rateLimitPerHour 1; an API token's second GET /2.0/repositories/amuniz/test-repos",
                Text,
            )
        },
        case(
            "cloud-token-200-client-credentials",
            "a private consumer with webhook and pullrequest:write; POST /site/oauth2/access_token grant_type=client_credentials, Basic key:secret",
            Shape(&["scopes", "expires_in", "token_type", "state"]),
        ),
        case(
            "cloud-token-400-unauthorized-client",
            "POST /site/oauth2/access_token client_credentials, Basic key:wrong secret",
            Equal,
        ),
        case(
            "cloud-token-400-public-consumer",
            "a consumer not marked private; POST /site/oauth2/access_token client_credentials, Basic key:secret",
            Equal,
        ),
        case(
            "cloud-token-unauthorized-client-no-auth",
            "POST /site/oauth2/access_token client_credentials without any client authentication",
            Equal,
        ),
        case(
            "cloud-401-access-token-expired",
            "oauthTokenTtlSeconds 0; a client-credentials token; GET bitbucket.org /api/2.0/user/permissions/repositories?page=1, Bearer",
            Equal,
        ),
        case(
            "cloud-401-access-token-expired-refresh",
            "oauthTokenTtlSeconds 0 and expiredAccessTokenHint; a client-credentials token; GET /2.0/repositories/amuniz, Bearer",
            Equal,
        ),
        // ------------------------------------------------------------------ Data Center
        case(
            "dc-appprops-200-perl",
            "Data Center 4.8.5 (buildDate 1471843790056), user bob (id 123) and his password; GET /rest/api/1.0/application-properties, Basic",
            Equal,
        ),
        Case {
            present: &["x-ausername"],
            ..case(
                "dc-appprops-200-9.4",
                "Data Center 9.4.22 (buildDate 1783935727556), a live personal token; GET /rest/api/1.0/application-properties, Bearer",
                Equal,
            )
        },
        Case {
            absent: &["x-ausername", "x-auserid"],
            ..case(
                "dc-appprops-200-anonymous-10.4",
                "Data Center 10.4.1, a revoked personal token; GET /rest/api/1.0/application-properties, Bearer",
                Shape(&["version", "displayName"]),
            )
        },
        Case {
            absent: &["x-ausername"],
            ..case(
                "dc-401-anonymous-required",
                "Data Center 10.4.1, an unknown token; GET /rest/api/1.0/users, Bearer",
                Shape(&["errors.0.message", "errors.0.exceptionName"]),
            )
        },
        Case {
            absent: &["x-ausername"],
            ..case(
                "dc-200-anonymous-repos-empty",
                "Data Center 10.4.1 with nothing public, an expired token; GET /rest/api/1.0/repos?permission=REPO_READ, Bearer",
                Equal,
            )
        },
        case(
            "dc-401-incorrect-password",
            "Data Center 9.4.22, user name with a wrong password; GET /rest/api/1.0/projects/PNAME/repos/repo-name/branches, Basic",
            Equal,
        ),
        case(
            "dc-403-basic-disabled",
            "Data Center 10.4.1 defaults, the admin's right password; GET /rest/api/1.0/application-properties, Basic",
            Equal,
        ),
        case(
            "dc-401-basic-force-allowed",
            "Data Center 10.4.1 with basicAuthDisabled false, a wrong password; GET /rest/api/1.0/application-properties, Basic",
            Excerpt(&[(
                "errors.0.message",
                "Authentication failed. Please check your credentials and try again.",
            )]),
        ),
        case(
            "dc-401-not-permitted-admin",
            "Data Center 9.4.22, a project administrator's personal token (PROJECT_ADMIN, no global permission); GET /rest/api/1.0/admin/permissions/users, Bearer",
            Shape(&["errors.0.message"]),
        ),
        case(
            "dc-404-project",
            "Data Center 9.4.22, no project dev; GET /rest/api/1.0/projects/dev/repos/null, Basic",
            Equal,
        ),
        case(
            "dc-404-repo",
            "Data Center 9.4.22, project BESG without core-network1; GET /rest/api/1.0/projects/BESG/repos/core-network1/branches, Basic",
            Equal,
        ),
        Case {
            note: "the clone links come http first, ssh second (the records list ssh first); clients pick a clone link by name",
            ..case(
                "dc-repo-200-jenkins",
                "Data Center 9.4.22, public project AMUNIZ (name prj, description) with private repository test-repos, not forkable; GET it, Basic",
                Shape(&[
                    "slug",
                    "id",
                    "name",
                    "scmId",
                    "state",
                    "statusMessage",
                    "forkable",
                    "public",
                    "project.key",
                    "project.id",
                    "project.name",
                    "project.description",
                    "project.public",
                    "project.type",
                ]),
            )
        },
        case(
            "dc-repo-200-goscm",
            "Data Center 9.4.22, private project PRJ (id 2) with repository my-repo the user can read; GET it, Bearer",
            Shape(&[
                "slug",
                "id",
                "name",
                "scmId",
                "state",
                "statusMessage",
                "forkable",
                "public",
                "project.key",
                "project.id",
                "project.name",
                "project.public",
                "project.type",
            ]),
        ),
        case(
            "dc-429-retry-after",
            "Data Center 9.4.22 with rateLimit bucketSize 1, refillPerSecond 1; a personal token's second GET /rest/api/1.0/application-properties",
            Skip,
        ),
        case(
            "dc-302-token-on-non-rest-path",
            "Data Center 9.4.22, a personal token; GET /projects/PNAME (a web page), Bearer",
            Skip,
        ),
    ]
}

// -------------------------------------------------------------------------------------------
// Worlds

const CLOUD: &str = r#"
listeners:
  - { name: cloud, hosts: [api.bitbucket.org, bitbucket.org], serves: [cloud] }
cloud:
  rateLimitPerHour: @LIMIT@
@EXTRA@
  users:
    - { username: brydzewski, email: brad@example.com, displayName: Brad Rydzewski, accountId: "557058:2a6349dc-4346-4805-bd84-3abdd0812d17", uuid: "{87bb15eb-47c1-49b3-9f16-ca824a2979a4}", password: brad-account-password }
  workspaces:
    - slug: amuniz
      name: Albert Muniz
      repositories:
        - { slug: test-repos, project: PUB, isPrivate: false, mainbranch: master }
    - slug: TestWorkspace1
      repositories:
        - { slug: testrepository1, project: TEST, mainbranch: master, access: { brydzewski: admin } }
  tokens:
    - { value: ATATT-brad, kind: apiToken, user: brydzewski, scopes: [read:user:bitbucket, read:repository:bitbucket, read:workspace:bitbucket] }
    - { value: ATATT-t3code, kind: apiToken, user: brydzewski, scopes: [write:repository:bitbucket, read:pullrequest:bitbucket, write:pullrequest:bitbucket, read:repository:bitbucket] }
    - { value: ATCTT-kb, kind: repositoryAccessToken, workspace: amuniz, repository: test-repos, scopes: ["repository:write"] }
  oauthConsumers:
    - { key: sonar-key, secret: sonar-secret, private: true, user: brydzewski, scopes: [webhook, "pullrequest:write"] }
    - { key: email-key, secret: email-secret, private: true, user: brydzewski, scopes: [email] }
    - { key: public-key, secret: public-secret, private: false, user: brydzewski, scopes: [account] }
    - { key: sharp-key, secret: sharp-secret, private: true, user: brydzewski, scopes: [account, team, pullrequest, issue, snippet, webhook] }
"#;

fn cloud_world(limit: u32, extra: &str) -> String {
    CLOUD
        .replace("@LIMIT@", &limit.to_string())
        .replace("@EXTRA@", extra)
}

const DC: &str = r#"
listeners:
  - { name: dc, hosts: [bitbucket.internal], serves: [datacenter] }
datacenter:
  version: "@VERSION@"
  buildDate: "@BUILD@"
@EXTRA@
  users:
    - { name: bob, password: bob-pw, id: 123 }
    - { name: name, password: passwd }
    - { name: admin, password: admin-pw }
    - { name: padmin, password: padmin-pw }
    - { name: jcitizen, password: jcitizen-pw }
  projects:
    - key: PNAME
      repositories: [ { slug: repo-name, access: { name: REPO_READ } } ]
    - key: BESG
      access: { bob: PROJECT_READ }
      repositories: [ { slug: core-network } ]
    - key: AMUNIZ
      id: 1
      name: prj
      description: This is a test repo
      public: @PUBLIC@
      repositories: [ { slug: test-repos, id: 1, forkable: false } ]
    - key: PRJ
      id: 2
      access: { padmin: PROJECT_ADMIN }
      repositories: [ { slug: my-repo, id: 1, access: { jcitizen: REPO_READ } } ]
  tokens:
    - { id: "100000000001", value: BBDC-revoked, kind: personal, user: bob, permissions: [PROJECT_READ, REPO_READ], revoked: true }
    - { id: "100000000002", value: BBDC-expired, kind: personal, user: bob, permissions: [PROJECT_READ, REPO_READ], expired: true }
    - { id: "100000000003", value: BBDC-padmin, kind: personal, user: padmin, permissions: [PROJECT_ADMIN, REPO_ADMIN] }
    - { id: "100000000004", value: BBDC-jcitizen, kind: personal, user: jcitizen, permissions: [PROJECT_READ, REPO_READ] }
"#;

fn dc_world(version: &str, build: &str, public: bool, extra: &str) -> String {
    DC.replace("@VERSION@", version)
        .replace("@BUILD@", build)
        .replace("@PUBLIC@", &public.to_string())
        .replace("@EXTRA@", extra)
}

async fn dc9(extra: &str) -> Sim {
    start(&dc_world("9.4.22", "1783935727556", true, extra)).await
}

async fn dc10(extra: &str) -> Sim {
    start(&dc_world("10.4.1", "1750000000000", false, extra)).await
}

const API: &str = "api.bitbucket.org";
const DC_HOST: &str = "bitbucket.internal";

fn brad() -> String {
    basic("brad@example.com", "ATATT-brad")
}

/// A client-credentials access token of a consumer.
async fn oauth_token(sim: &Sim, key: &str, secret: &str) -> String {
    let r = sim
        .conn("cloud", "bitbucket.org")
        .await
        .post_form(
            "/site/oauth2/access_token",
            Some(&basic(key, secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["access_token"].as_str().unwrap().to_owned()
}

async fn token_endpoint(auth: Option<&str>) -> Resp {
    let sim = start(&cloud_world(0, "")).await;
    sim.conn("cloud", "bitbucket.org")
        .await
        .post_form(
            "/site/oauth2/access_token",
            auth,
            &[("grant_type", "client_credentials")],
        )
        .await
}

/// Builds the record's world and sends its request.
async fn provoke(id: &str) -> Resp {
    match id {
        "cloud-user-200-goscm" => {
            let sim = start(&cloud_world(0, "")).await;
            sim.get("cloud", API, "/2.0/user", Some(&brad())).await
        }
        "cloud-repo-200-jenkins" => {
            let sim = start(&cloud_world(0, "")).await;
            sim.get(
                "cloud",
                API,
                "/2.0/repositories/amuniz/test-repos",
                Some(&brad()),
            )
            .await
        }
        "cloud-repo-200-atlassian-python-api" => {
            let sim = start(&cloud_world(0, "")).await;
            sim.get(
                "cloud",
                API,
                "/2.0/repositories/TestWorkspace1/testrepository1",
                Some(&brad()),
            )
            .await
        }
        "cloud-headers-kb-repo-access-token" => {
            let sim = start(&cloud_world(0, "")).await;
            let auth = bearer("ATCTT-kb");
            sim.conn("cloud", API)
                .await
                .try_send(Method::HEAD, "/2.0/repositories", Some(&auth), None)
                .await
                .unwrap()
        }
        "cloud-401-token-invalid" => {
            let sim = start(&cloud_world(0, "")).await;
            sim.get(
                "cloud",
                API,
                "/2.0/repositories/amuniz/test-repos/pullrequests?pagelen=20&state=OPEN",
                Some(&bearer("no-such-token")),
            )
            .await
        }
        "cloud-401-login-failed-text" => {
            let sim = start(&cloud_world(0, "")).await;
            let auth = basic("brad@example.com", "not-the-secret");
            sim.get("cloud", API, "/2.0/user", Some(&auth)).await
        }
        "cloud-401-www-authenticate-bitbucketcustom" => {
            let sim = start(&cloud_world(0, "")).await;
            let auth = basic("brydzewski", "app-password-secret");
            sim.get("cloud", API, "/2.0/user", Some(&auth)).await
        }
        "cloud-401-account-password" => {
            let sim = start(&cloud_world(0, "")).await;
            let auth = basic("brydzewski", "brad-account-password");
            sim.get(
                "cloud",
                API,
                "/2.0/repositories/amuniz/test-repos/refs/branches/master",
                Some(&auth),
            )
            .await
        }
        "cloud-403-scope-user" => {
            let sim = start(&cloud_world(0, "")).await;
            let auth = basic("brad@example.com", "ATATT-t3code");
            sim.get("cloud", API, "/2.0/user", Some(&auth)).await
        }
        "cloud-403-scope-sonarqube" => {
            let sim = start(&cloud_world(0, "")).await;
            let token = oauth_token(&sim, "email-key", "email-secret").await;
            sim.get(
                "cloud",
                API,
                "/2.0/repositories/amuniz",
                Some(&bearer(&token)),
            )
            .await
        }
        "cloud-403-forbidden-v1-user" => {
            let sim = start(&cloud_world(0, "")).await;
            sim.get("cloud", API, "/user", Some(&brad())).await
        }
        "cloud-404-repo" => {
            let sim = start(&cloud_world(0, "")).await;
            sim.get(
                "cloud",
                API,
                "/2.0/repositories/amuniz/no-such-repo",
                Some(&brad()),
            )
            .await
        }
        "cloud-404-workspace" => {
            let sim = start(&cloud_world(0, "")).await;
            let token = oauth_token(&sim, "sonar-key", "sonar-secret").await;
            sim.get(
                "cloud",
                API,
                "/2.0/repositories/workspace",
                Some(&bearer(&token)),
            )
            .await
        }
        "cloud-404-no-api" => {
            let sim = start(&cloud_world(0, "")).await;
            sim.get("cloud", API, "/2.0/no/api/here", Some(&brad()))
                .await
        }
        "cloud-429-sharpbucket" => {
            let sim = start(&cloud_world(1, "")).await;
            let token = bearer(&oauth_token(&sim, "sharp-key", "sharp-secret").await);
            let mut c = sim.conn("cloud", API).await;
            let first = c.get("/2.0/repositories/amuniz", Some(&token)).await;
            assert_eq!(first.status, 200, "{}", first.text());
            c.get("/2.0/repositories/amuniz", Some(&token)).await
        }
        "cloud-429-jenkins" => {
            let sim = start(&cloud_world(1, "")).await;
            let mut c = sim.conn("cloud", API).await;
            let path = "/2.0/repositories/amuniz/test-repos";
            assert_eq!(c.get(path, Some(&brad())).await.status, 200);
            c.get(path, Some(&brad())).await
        }
        "cloud-token-200-client-credentials" => {
            token_endpoint(Some(&basic("sonar-key", "sonar-secret"))).await
        }
        "cloud-token-400-unauthorized-client" => {
            token_endpoint(Some(&basic("sonar-key", "wrong-secret"))).await
        }
        "cloud-token-400-public-consumer" => {
            token_endpoint(Some(&basic("public-key", "public-secret"))).await
        }
        "cloud-token-unauthorized-client-no-auth" => token_endpoint(None).await,
        "cloud-401-access-token-expired" => {
            let sim = start(&cloud_world(0, "  oauthTokenTtlSeconds: 0")).await;
            let token = oauth_token(&sim, "sonar-key", "sonar-secret").await;
            sim.get(
                "cloud",
                "bitbucket.org",
                "/api/2.0/user/permissions/repositories?page=1",
                Some(&bearer(&token)),
            )
            .await
        }
        "cloud-401-access-token-expired-refresh" => {
            let sim = start(&cloud_world(
                0,
                "  oauthTokenTtlSeconds: 0\n  expiredAccessTokenHint: true",
            ))
            .await;
            let token = oauth_token(&sim, "sonar-key", "sonar-secret").await;
            sim.get(
                "cloud",
                API,
                "/2.0/repositories/amuniz",
                Some(&bearer(&token)),
            )
            .await
        }

        "dc-appprops-200-perl" => {
            let sim = start(&dc_world("4.8.5", "1471843790056", true, "")).await;
            let auth = basic("bob", "bob-pw");
            sim.get(
                "dc",
                DC_HOST,
                "/rest/api/1.0/application-properties",
                Some(&auth),
            )
            .await
        }
        "dc-appprops-200-9.4" => {
            let sim = dc9("").await;
            let auth = bearer("BBDC-jcitizen");
            sim.get(
                "dc",
                DC_HOST,
                "/rest/api/1.0/application-properties",
                Some(&auth),
            )
            .await
        }
        "dc-appprops-200-anonymous-10.4" => {
            let sim = dc10("").await;
            let auth = bearer("BBDC-revoked");
            sim.get(
                "dc",
                DC_HOST,
                "/rest/api/1.0/application-properties",
                Some(&auth),
            )
            .await
        }
        "dc-401-anonymous-required" => {
            let sim = dc10("").await;
            let auth = bearer("BBDC-never-issued");
            sim.get("dc", DC_HOST, "/rest/api/1.0/users", Some(&auth))
                .await
        }
        "dc-200-anonymous-repos-empty" => {
            let sim = dc10("").await;
            let auth = bearer("BBDC-expired");
            sim.get(
                "dc",
                DC_HOST,
                "/rest/api/1.0/repos?permission=REPO_READ",
                Some(&auth),
            )
            .await
        }
        "dc-401-incorrect-password" => {
            let sim = dc9("").await;
            let auth = basic("name", "not-passwd");
            sim.get(
                "dc",
                DC_HOST,
                "/rest/api/1.0/projects/PNAME/repos/repo-name/branches",
                Some(&auth),
            )
            .await
        }
        "dc-403-basic-disabled" => {
            let sim = dc10("").await;
            let auth = basic("admin", "admin-pw");
            sim.get(
                "dc",
                DC_HOST,
                "/rest/api/1.0/application-properties",
                Some(&auth),
            )
            .await
        }
        "dc-401-basic-force-allowed" => {
            let sim = dc10("  basicAuthDisabled: false").await;
            let auth = basic("admin", "not-admin-pw");
            sim.get(
                "dc",
                DC_HOST,
                "/rest/api/1.0/application-properties",
                Some(&auth),
            )
            .await
        }
        "dc-401-not-permitted-admin" => {
            let sim = dc9("").await;
            let auth = bearer("BBDC-padmin");
            sim.get(
                "dc",
                DC_HOST,
                "/rest/api/1.0/admin/permissions/users",
                Some(&auth),
            )
            .await
        }
        "dc-404-project" => {
            let sim = dc9("").await;
            let auth = basic("bob", "bob-pw");
            sim.get(
                "dc",
                DC_HOST,
                "/rest/api/1.0/projects/dev/repos/null",
                Some(&auth),
            )
            .await
        }
        "dc-404-repo" => {
            let sim = dc9("").await;
            let auth = basic("bob", "bob-pw");
            sim.get(
                "dc",
                DC_HOST,
                "/rest/api/1.0/projects/BESG/repos/core-network1/branches",
                Some(&auth),
            )
            .await
        }
        "dc-repo-200-jenkins" => {
            let sim = dc9("").await;
            let auth = basic("bob", "bob-pw");
            sim.get(
                "dc",
                DC_HOST,
                "/rest/api/1.0/projects/AMUNIZ/repos/test-repos",
                Some(&auth),
            )
            .await
        }
        "dc-repo-200-goscm" => {
            let sim = dc9("").await;
            let auth = bearer("BBDC-jcitizen");
            sim.get(
                "dc",
                DC_HOST,
                "/rest/api/1.0/projects/PRJ/repos/my-repo",
                Some(&auth),
            )
            .await
        }
        "dc-429-retry-after" => {
            let sim = dc9("  rateLimit: { bucketSize: 1, refillPerSecond: 1 }").await;
            let auth = bearer("BBDC-jcitizen");
            let mut c = sim.conn("dc", DC_HOST).await;
            let path = "/rest/api/1.0/application-properties";
            assert_eq!(c.get(path, Some(&auth)).await.status, 200);
            c.get(path, Some(&auth)).await
        }
        "dc-302-token-on-non-rest-path" => {
            let sim = dc9("").await;
            let auth = bearer("BBDC-padmin");
            sim.get("dc", DC_HOST, "/projects/PNAME", Some(&auth)).await
        }
        other => panic!("record {other} has no scenario in real_answers.rs"),
    }
}

// -------------------------------------------------------------------------------------------
// Comparison

fn records() -> Vec<Value> {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/real-answers/answers.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str::<Value>(&text)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// `a.b.0.c` in a JSON value.
fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(v, |v, k| match k.parse::<usize>() {
            Ok(i) => v.get(i),
            Err(_) => v.get(k),
        })
}

fn same_type(a: &Value, b: &Value) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

/// Every key of `rec` exists in `sim` with the same type (see [`Body::Shape`]).
fn shape_subset(rec: &Value, sim: &Value, path: &str, errs: &mut Vec<String>) {
    match rec {
        Value::Null => {}
        Value::Object(m) => {
            let Some(s) = sim.as_object() else {
                errs.push(format!("{path}: not an object in the answer"));
                return;
            };
            for (k, v) in m {
                let p = format!("{path}.{k}");
                match s.get(k) {
                    Some(sv) => shape_subset(v, sv, &p, errs),
                    None => errs.push(format!("{p}: missing in the answer")),
                }
            }
        }
        Value::Array(a) => match (a.first(), sim.as_array()) {
            (_, None) => errs.push(format!("{path}: not an array in the answer")),
            (None, Some(_)) => {}
            (Some(first), Some(s)) => match s.first() {
                Some(sf) => shape_subset(first, sf, &format!("{path}.0"), errs),
                None => errs.push(format!("{path}: empty in the answer")),
            },
        },
        _ if !same_type(rec, sim) => errs.push(format!("{path}: {rec} recorded, {sim} answered")),
        _ => {}
    }
}

fn media_type(v: &str) -> String {
    v.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// `Scheme realm=...`, the realm unquoted.
fn challenge(v: &str) -> (String, String) {
    let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
    let realm = rest
        .trim()
        .strip_prefix("realm=")
        .unwrap_or(rest)
        .trim_matches('"')
        .to_owned();
    (scheme.to_ascii_lowercase(), realm)
}

fn compare(c: &Case, rec: &Value, resp: &Resp) -> Vec<String> {
    let mut errs = Vec::new();
    let status = rec["status"].as_u64().unwrap();
    if u64::from(resp.status) != status {
        errs.push(format!(
            "status {} answered, {status} recorded ({})",
            resp.status,
            resp.text()
        ));
    }

    // Headers.
    let recorded: BTreeMap<String, String> = rec["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap().to_owned()))
        .collect();
    let exact = rec["headers_fidelity"].as_str().unwrap().contains("exact");
    for name in MEANINGFUL {
        if c.skip.contains(name) {
            continue;
        }
        let got = resp.header(name);
        match (recorded.get(*name), got) {
            (Some(want), None) => errs.push(format!("header {name}: recorded {want:?}, missing")),
            (Some(want), Some(got)) => {
                let equal = match *name {
                    "content-type" => media_type(want) == media_type(got),
                    "www-authenticate" => challenge(want) == challenge(got),
                    // A described, unquoted login page.
                    "location" if want.starts_with('<') => got.ends_with("/login"),
                    _ => c.loose.contains(name) || want == got,
                };
                if !equal {
                    errs.push(format!(
                        "header {name}: recorded {want:?}, answered {got:?}"
                    ));
                }
            }
            (None, Some(got)) if exact => {
                errs.push(format!("header {name}: not recorded, answered {got:?}"));
            }
            _ => {}
        }
        if c.present.contains(name) && got.is_none() {
            errs.push(format!("header {name}: implied by the record, missing"));
        }
        if c.absent.contains(name) && got.is_some() {
            errs.push(format!("header {name}: must be absent, answered {got:?}"));
        }
    }

    // Body.
    let body = rec["body"].as_str();
    let parsed = body.and_then(|b| serde_json::from_str::<Value>(b).ok());
    let answer_json = serde_json::from_slice::<Value>(&resp.body).ok();
    match &c.body {
        Body::Skip => {
            // Only bodies that were not recorded are skipped.
            if body.is_some_and(|b| !b.is_empty()) {
                errs.push("a recorded body is skipped".to_owned());
            }
        }
        Body::Text => {
            let want = body.unwrap_or_default().trim_end();
            if resp.text().trim_end() != want {
                errs.push(format!(
                    "text {:?} answered, {want:?} recorded",
                    resp.text()
                ));
            }
        }
        Body::Equal => match (&parsed, &answer_json) {
            (Some(want), Some(got)) if want == got => {}
            _ => errs.push(format!(
                "body {} answered, {} recorded",
                resp.text(),
                body.unwrap_or_default()
            )),
        },
        Body::Shape(same) => match (&parsed, &answer_json) {
            (Some(want), Some(got)) => {
                shape_subset(want, got, "$", &mut errs);
                for p in *same {
                    if at(want, p) != at(got, p) {
                        errs.push(format!(
                            "{p}: {:?} answered, {:?} recorded",
                            at(got, p),
                            at(want, p)
                        ));
                    }
                }
            }
            _ => errs.push(format!("JSON expected, answered {}", resp.text())),
        },
        Body::Paths(exist, same) => match (&parsed, &answer_json) {
            (Some(want), Some(got)) => {
                for p in *exist {
                    match (at(want, p), at(got, p)) {
                        (Some(w), Some(g)) if same_type(w, g) => {}
                        (w, g) => errs.push(format!("{p}: {g:?} answered, {w:?} recorded")),
                    }
                }
                for p in *same {
                    if at(want, p) != at(got, p) {
                        errs.push(format!(
                            "{p}: {:?} answered, {:?} recorded",
                            at(got, p),
                            at(want, p)
                        ));
                    }
                }
            }
            _ => errs.push(format!("JSON expected, answered {}", resp.text())),
        },
        Body::Excerpt(pairs) => match &answer_json {
            Some(got) => {
                for (p, want) in *pairs {
                    if at(got, p).and_then(Value::as_str) != Some(*want) {
                        errs.push(format!("{p}: {:?} answered, {want:?} quoted", at(got, p)));
                    }
                }
            }
            None => errs.push(format!("JSON expected, answered {}", resp.text())),
        },
    }
    errs
}

#[tokio::test]
async fn every_real_answer_is_reproduced() {
    let records = records();
    let cases = cases();
    let table: BTreeMap<&str, &Case> = cases.iter().map(|c| (c.id, c)).collect();
    assert_eq!(table.len(), cases.len(), "a record is listed twice");
    let ids: Vec<&str> = records.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let missing: Vec<&&str> = ids.iter().filter(|id| !table.contains_key(**id)).collect();
    assert!(
        missing.is_empty(),
        "records without a scenario: {missing:?}"
    );
    let stale: Vec<&&str> = table.keys().filter(|id| !ids.contains(id)).collect();
    assert!(stale.is_empty(), "scenarios without a record: {stale:?}");
    assert_eq!(ids.len(), 37);

    let mut failures = Vec::new();
    for rec in &records {
        let id = rec["id"].as_str().unwrap();
        let c = table[id];
        let resp = provoke(id).await;
        let errs = compare(c, rec, &resp);
        if !errs.is_empty() {
            failures.push(format!("{id} ({}):\n  {}", c.how, errs.join("\n  ")));
        }
        if !c.note.is_empty() {
            eprintln!("{id}: checked in part: {}", c.note);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} records not reproduced:\n{}",
        failures.len(),
        records.len(),
        failures.join("\n")
    );
}

/// The comparison is not vacuous: a changed status, header or message fails it.
#[test]
fn comparison_detects_differences() {
    let rec: Value = serde_json::json!({
        "status": 403, "headers": {"content-type": "application/json;charset=UTF-8"},
        "headers_fidelity": "exact",
        "body": "{\"message\":\"Basic Authentication has been disabled on this instance.\"}",
    });
    let resp = |status: u16, ct: &str, body: &str, extra: Option<(&str, &str)>| {
        let mut headers = http::HeaderMap::new();
        headers.insert("content-type", ct.parse().unwrap());
        if let Some((k, v)) = extra {
            headers.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        Resp {
            status,
            headers,
            body: bytes::Bytes::from(body.to_owned()),
        }
    };
    let c = case("x", "", Body::Equal);
    let good = r#"{"message":"Basic Authentication has been disabled on this instance."}"#;
    assert!(compare(&c, &rec, &resp(403, "application/json", good, None)).is_empty());
    assert!(!compare(&c, &rec, &resp(401, "application/json", good, None)).is_empty());
    assert!(!compare(&c, &rec, &resp(403, "text/plain", good, None)).is_empty());
    assert!(
        !compare(
            &c,
            &rec,
            &resp(403, "application/json", r#"{"message":"x"}"#, None)
        )
        .is_empty()
    );
    assert!(
        !compare(
            &c,
            &rec,
            &resp(403, "application/json", good, Some(("x-ausername", "bob")))
        )
        .is_empty(),
        "an unrecorded header of an exact recording"
    );
    let mut errs = Vec::new();
    shape_subset(
        &serde_json::json!({"a": {"b": [1]}}),
        &serde_json::json!({"a": {"b": ["1"]}, "c": 1}),
        "$",
        &mut errs,
    );
    assert_eq!(errs.len(), 1, "{errs:?}");
}
