//! Every answer a real Bitbucket server gave (tests/real-answers/answers.json), served verbatim
//! on the path bbconn asks, with the simulator's ordinary answers for the other steps, and the
//! verdict `bbconn check` reaches for it. The table must cover every record: a record without a
//! row fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bbconn_sim::fixture::Fault;
use common::{World, connection, world_fixture};
use serde_json::{Value, json};
use std::collections::BTreeSet;

const NS: &str = "real";
const CA: &str = "  tls: {caBundleRef: {kind: ConfigMap, name: test-ca}}";

struct Replay {
    id: &'static str,
    flavor: &'static str,
    url: &'static str,
    method: &'static str,
    secret: &'static [(&'static str, &'static str)],
    /// YAML lines added to the spec (requirements).
    extra: &'static str,
    /// Where bbconn meets the answer: the path prefix, and a part of the query.
    at: &'static str,
    query: Option<&'static str>,
    /// Other answers the step needs (JSON faults), e.g. Cloud's identity after a token exchange.
    also: Vec<Value>,
    /// (condition, status, reason) that must hold; reason `*`: any (a warning may stand there).
    expect: &'static [(&'static str, &'static str, &'static str)],
    /// Text the failing condition's message (or the passing one's) must contain.
    says: Option<(&'static str, &'static str)>,
}

const CLOUD: &str = "https://api.bitbucket.org/2.0";
const DC: &str = "https://bitbucket.example.com";
const API_TOKEN: &[(&str, &str)] = &[
    ("username", "alice@example.com"),
    ("token", "cloud-api-alice-full-0001"),
];
const CLOUD_ACCESS_TOKEN: &[(&str, &str)] = &[("token", "cloud-repo-token-infra-0005")];
const CONSUMER: &[(&str, &str)] = &[
    ("clientId", "tfe-consumer-key"),
    ("clientSecret", "tfe-consumer-secret-0008"),
];
const DC_TOKEN: &[(&str, &str)] = &[("token", "dc-alice-admin-token-0103")];
const DC_PASSWORD: &[(&str, &str)] = &[
    ("username", "alice"),
    ("password", "dc-alice-password-0101"),
];
const APP_PROPS: &str = "/rest/api/latest/application-properties";

#[allow(clippy::too_many_arguments)]
fn r(
    id: &'static str,
    flavor: &'static str,
    url: &'static str,
    method: &'static str,
    secret: &'static [(&'static str, &'static str)],
    extra: &'static str,
    at: &'static str,
    expect: &'static [(&'static str, &'static str, &'static str)],
) -> Replay {
    Replay {
        id,
        flavor,
        url,
        method,
        secret,
        extra,
        at,
        query: None,
        also: Vec::new(),
        expect,
        says: None,
    }
}

fn cloud_user_ok() -> Value {
    json!({"pathPrefix": "/2.0/user", "kind": "answer", "status": 200,
        "headers": {"content-type": "application/json", "x-credential-type": "oauth2", "x-oauth-scopes": "webhook, pullrequest:write"},
        "body": "{\"type\":\"user\",\"username\":\"tfe-bot\",\"display_name\":\"TFE\",\"account_id\":\"5571:1\"}"})
}

fn table() -> Vec<Replay> {
    vec![
        // Cloud
        Replay {
            says: Some(("Authenticated", "brydzewski")),
            ..r(
                "cloud-user-200-goscm",
                "Cloud",
                CLOUD,
                "ApiToken",
                API_TOKEN,
                "",
                "/2.0/user",
                &[
                    ("Authenticated", "True", "Passed"),
                    ("Ready", "True", "AllChecksPassed"),
                ],
            )
        },
        r(
            "cloud-repo-200-jenkins",
            "Cloud",
            CLOUD,
            "ApiToken",
            API_TOKEN,
            "  requirements: {repositories: [{name: amuniz/test-repos}]}",
            "/2.0/repositories/amuniz/test-repos",
            &[("RepositoryAccess", "True", "Passed")],
        ),
        r(
            "cloud-repo-200-atlassian-python-api",
            "Cloud",
            CLOUD,
            "ApiToken",
            API_TOKEN,
            "  requirements: {repositories: [{name: TestWorkspace1/testrepository1}]}",
            "/2.0/repositories/TestWorkspace1/testrepository1",
            &[("RepositoryAccess", "True", "Passed")],
        ),
        // A HEAD of /2.0/repositories in the recording; bbconn reads the same headers from its
        // identity probe.
        Replay {
            says: Some(("Authenticated", "repo_access_token")),
            ..r(
                "cloud-headers-kb-repo-access-token",
                "Cloud",
                CLOUD,
                "AccessToken",
                CLOUD_ACCESS_TOKEN,
                "  requirements: {scopes: [repository]}",
                "/2.0/user",
                &[
                    ("Authenticated", "True", "Passed"),
                    ("ScopesSufficient", "True", "*"),
                ],
            )
        },
        r(
            "cloud-401-token-invalid",
            "Cloud",
            CLOUD,
            "AccessToken",
            CLOUD_ACCESS_TOKEN,
            "",
            "/2.0/user",
            &[
                ("Authenticated", "False", "TokenRevoked"),
                ("Stalled", "True", "TokenRevoked"),
            ],
        ),
        r(
            "cloud-401-login-failed-text",
            "Cloud",
            CLOUD,
            "ApiToken",
            API_TOKEN,
            "",
            "/2.0/user",
            &[("Authenticated", "False", "TokenRevoked")],
        ),
        r(
            "cloud-401-www-authenticate-bitbucketcustom",
            "Cloud",
            CLOUD,
            "ApiToken",
            API_TOKEN,
            "",
            "/2.0/user",
            &[("Authenticated", "False", "TokenRevoked")],
        ),
        r(
            "cloud-401-account-password",
            "Cloud",
            CLOUD,
            "Basic",
            &[("username", "alice"), ("password", "an-account-password")],
            "",
            "/2.0/user",
            &[("Authenticated", "False", "CredentialsRejected")],
        ),
        Replay {
            says: Some(("ScopesSufficient", "read:user:bitbucket")),
            ..r(
                "cloud-403-scope-user",
                "Cloud",
                CLOUD,
                "ApiToken",
                API_TOKEN,
                "  requirements: {scopes: [read:repository:bitbucket]}",
                "/2.0/user",
                &[
                    ("Authenticated", "True", "Passed"),
                    ("ScopesSufficient", "False", "InsufficientScopes"),
                ],
            )
        },
        Replay {
            says: Some(("ScopesSufficient", "account")),
            ..r(
                "cloud-403-scope-sonarqube",
                "Cloud",
                CLOUD,
                "OAuthClientCredentials",
                CONSUMER,
                "",
                "/2.0/user",
                &[
                    ("Authenticated", "True", "Passed"),
                    ("ScopesSufficient", "False", "InsufficientScopes"),
                ],
            )
        },
        r(
            "cloud-403-forbidden-v1-user",
            "Cloud",
            "https://api.bitbucket.org",
            "AccessToken",
            CLOUD_ACCESS_TOKEN,
            "",
            "/user",
            &[
                ("Ready", "False", "NotBitbucketApi"),
                ("Stalled", "True", "NotBitbucketApi"),
            ],
        ),
        r(
            "cloud-404-repo",
            "Cloud",
            CLOUD,
            "ApiToken",
            API_TOKEN,
            "  requirements: {repositories: [{name: acme/unknown-repo}]}",
            "/2.0/repositories/acme/unknown-repo",
            &[("RepositoryAccess", "False", "RepositoryNotFound")],
        ),
        Replay {
            says: Some(("RepositoryAccess", "No workspace with identifier")),
            ..r(
                "cloud-404-workspace",
                "Cloud",
                CLOUD,
                "ApiToken",
                API_TOKEN,
                "  requirements: {repositories: [{name: workspace/app}]}",
                "/2.0/repositories/workspace",
                &[("RepositoryAccess", "False", "RepositoryNotFound")],
            )
        },
        r(
            "cloud-404-no-api",
            "Cloud",
            CLOUD,
            "ApiToken",
            API_TOKEN,
            "",
            "/2.0/user",
            &[("Ready", "False", "NotBitbucketApi")],
        ),
        Replay {
            says: Some(("Authenticated", "no Retry-After")),
            ..r(
                "cloud-429-sharpbucket",
                "Cloud",
                CLOUD,
                "ApiToken",
                API_TOKEN,
                "",
                "/2.0/user",
                &[
                    ("Authenticated", "Unknown", "RateLimited"),
                    ("Ready", "Unknown", "RateLimited"),
                ],
            )
        },
        r(
            "cloud-429-jenkins",
            "Cloud",
            CLOUD,
            "ApiToken",
            API_TOKEN,
            "  requirements: {repositories: [{name: acme/infra}]}",
            "/2.0/repositories/acme/infra",
            &[
                ("RepositoryAccess", "Unknown", "RateLimited"),
                ("Ready", "Unknown", "RateLimited"),
            ],
        ),
        Replay {
            also: vec![cloud_user_ok()],
            says: Some(("ScopesSufficient", "pullrequest:write")),
            ..r(
                "cloud-token-200-client-credentials",
                "Cloud",
                CLOUD,
                "OAuthClientCredentials",
                CONSUMER,
                "  requirements: {scopes: [webhook, pullrequest:write]}",
                "/site/oauth2/access_token",
                &[
                    ("Authenticated", "True", "Passed"),
                    ("ScopesSufficient", "True", "Passed"),
                ],
            )
        },
        r(
            "cloud-token-400-unauthorized-client",
            "Cloud",
            CLOUD,
            "OAuthClientCredentials",
            CONSUMER,
            "",
            "/site/oauth2/access_token",
            &[("Authenticated", "False", "OAuthClientRejected")],
        ),
        Replay {
            says: Some(("Authenticated", "private")),
            ..r(
                "cloud-token-400-public-consumer",
                "Cloud",
                CLOUD,
                "OAuthClientCredentials",
                CONSUMER,
                "",
                "/site/oauth2/access_token",
                &[("Authenticated", "False", "OAuthClientRejected")],
            )
        },
        r(
            "cloud-token-unauthorized-client-no-auth",
            "Cloud",
            CLOUD,
            "OAuthClientCredentials",
            CONSUMER,
            "",
            "/site/oauth2/access_token",
            &[("Authenticated", "False", "OAuthClientRejected")],
        ),
        r(
            "cloud-401-access-token-expired",
            "Cloud",
            CLOUD,
            "AccessToken",
            CLOUD_ACCESS_TOKEN,
            "",
            "/2.0/user",
            &[
                ("Authenticated", "False", "TokenExpired"),
                ("Stalled", "True", "TokenExpired"),
            ],
        ),
        r(
            "cloud-401-access-token-expired-refresh",
            "Cloud",
            CLOUD,
            "AccessToken",
            CLOUD_ACCESS_TOKEN,
            "",
            "/2.0/user",
            &[("Authenticated", "False", "TokenExpired")],
        ),
        // Data Center
        Replay {
            says: Some(("Authenticated", "bob")),
            ..r(
                "dc-appprops-200-perl",
                "DataCenter",
                DC,
                "Basic",
                DC_PASSWORD,
                "",
                APP_PROPS,
                &[("Authenticated", "True", "*")],
            )
        },
        // Headers not recorded, so no X-AUSERNAME: bbconn never assumes an identity from a 200.
        r(
            "dc-appprops-200-9.4",
            "DataCenter",
            DC,
            "AccessToken",
            DC_TOKEN,
            "",
            APP_PROPS,
            &[("Authenticated", "False", "TokenRevoked")],
        ),
        Replay {
            says: Some(("Authenticated", "anonymous")),
            ..r(
                "dc-appprops-200-anonymous-10.4",
                "DataCenter",
                DC,
                "AccessToken",
                DC_TOKEN,
                "",
                APP_PROPS,
                &[
                    ("Authenticated", "False", "TokenRevoked"),
                    ("Stalled", "True", "TokenRevoked"),
                ],
            )
        },
        // Recorded on /users; bbconn's identity probe is application-properties.
        r(
            "dc-401-anonymous-required",
            "DataCenter",
            DC,
            "AccessToken",
            DC_TOKEN,
            "",
            APP_PROPS,
            &[("Authenticated", "False", "TokenRevoked")],
        ),
        Replay {
            query: Some("permission=REPO_READ"),
            ..r(
                "dc-200-anonymous-repos-empty",
                "DataCenter",
                DC,
                "AccessToken",
                DC_TOKEN,
                "  requirements: {permissions: [REPO_READ]}",
                "/rest/api/latest/repos",
                &[
                    ("Authenticated", "True", "Passed"),
                    ("ScopesSufficient", "Unknown", "UnexpectedResponse"),
                    ("Ready", "Unknown", "UnexpectedResponse"),
                ],
            )
        },
        r(
            "dc-401-incorrect-password",
            "DataCenter",
            DC,
            "Basic",
            DC_PASSWORD,
            "",
            APP_PROPS,
            &[("Authenticated", "False", "CredentialsRejected")],
        ),
        r(
            "dc-403-basic-disabled",
            "DataCenter",
            DC,
            "Basic",
            DC_PASSWORD,
            "",
            APP_PROPS,
            &[
                ("Authenticated", "False", "BasicAuthDisabled"),
                ("Stalled", "True", "BasicAuthDisabled"),
            ],
        ),
        r(
            "dc-401-basic-force-allowed",
            "DataCenter",
            DC,
            "Basic",
            DC_PASSWORD,
            "",
            APP_PROPS,
            &[("Authenticated", "False", "CredentialsRejected")],
        ),
        // Recorded on an admin resource; bbconn meets the same 401 on a permission probe: the
        // credential is authenticated and lacks the permission.
        Replay {
            query: Some("permission=REPO_ADMIN"),
            ..r(
                "dc-401-not-permitted-admin",
                "DataCenter",
                DC,
                "AccessToken",
                DC_TOKEN,
                "  requirements: {permissions: [REPO_ADMIN]}",
                "/rest/api/latest/repos",
                &[
                    ("Authenticated", "True", "Passed"),
                    ("ScopesSufficient", "False", "InsufficientScopes"),
                ],
            )
        },
        r(
            "dc-404-project",
            "DataCenter",
            DC,
            "AccessToken",
            DC_TOKEN,
            "  requirements: {repositories: [{name: dev/null}]}",
            "/rest/api/latest/projects/dev/repos/null",
            &[("RepositoryAccess", "False", "RepositoryNotFound")],
        ),
        r(
            "dc-404-repo",
            "DataCenter",
            DC,
            "AccessToken",
            DC_TOKEN,
            "  requirements: {repositories: [{name: BESG/core-network1}]}",
            "/rest/api/latest/projects/BESG/repos/core-network1",
            &[("RepositoryAccess", "False", "RepositoryNotFound")],
        ),
        r(
            "dc-repo-200-jenkins",
            "DataCenter",
            DC,
            "AccessToken",
            DC_TOKEN,
            "  requirements: {repositories: [{name: AMUNIZ/test-repos}]}",
            "/rest/api/latest/projects/AMUNIZ/repos/test-repos",
            &[("RepositoryAccess", "True", "Passed")],
        ),
        r(
            "dc-repo-200-goscm",
            "DataCenter",
            DC,
            "AccessToken",
            DC_TOKEN,
            "  requirements: {repositories: [{name: PRJ/my-repo}]}",
            "/rest/api/latest/projects/PRJ/repos/my-repo",
            &[("RepositoryAccess", "True", "Passed")],
        ),
        r(
            "dc-429-retry-after",
            "DataCenter",
            DC,
            "AccessToken",
            DC_TOKEN,
            "",
            APP_PROPS,
            &[
                ("Authenticated", "Unknown", "RateLimited"),
                ("Ready", "Unknown", "RateLimited"),
            ],
        ),
        r(
            "dc-302-token-on-non-rest-path",
            "DataCenter",
            DC,
            "AccessToken",
            DC_TOKEN,
            "",
            APP_PROPS,
            &[
                ("Ready", "False", "NotBitbucketApi"),
                ("Stalled", "True", "NotBitbucketApi"),
            ],
        ),
    ]
}

fn records() -> Vec<Value> {
    let text = include_str!("real-answers/answers.json");
    serde_json::from_str::<Vec<Value>>(text).unwrap()
}

/// The record as a fault that answers it verbatim.
fn replay_fault(record: &Value, at: &str, query: Option<&str>) -> Fault {
    let mut headers = record["headers"].clone();
    if record["id"] == "dc-302-token-on-non-rest-path" {
        // The recording describes the Location ("<login page>") rather than quoting it.
        headers = json!({"Location": "https://bitbucket.example.com/login?next=/rest/api/latest/application-properties"});
    }
    let mut f = json!({
        "kind": "answer",
        "pathPrefix": at,
        "status": record["status"],
        "headers": headers,
        "body": record["body"].as_str().unwrap_or_default(),
    });
    if let Some(q) = query {
        f["queryContains"] = json!(q);
    }
    serde_json::from_value(f).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_real_answer_gets_the_verdict_its_meaning_says() {
    let records = records();
    let table = table();
    let ids: BTreeSet<&str> = records.iter().filter_map(|r| r["id"].as_str()).collect();
    let covered: BTreeSet<&str> = table.iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), 37, "answers.json holds 37 records");
    assert_eq!(
        ids.difference(&covered).collect::<Vec<_>>(),
        Vec::<&&str>::new(),
        "records without a row"
    );

    let mut failures = Vec::new();
    for row in &table {
        let record = records.iter().find(|r| r["id"] == row.id).unwrap();
        let mut fixture = world_fixture();
        let mut faults = vec![replay_fault(record, row.at, row.query)];
        faults.extend(
            row.also
                .iter()
                .map(|v| serde_json::from_value(v.clone()).unwrap()),
        );
        fixture.faults.splice(0..0, faults);
        let world = World::start_with(fixture).await;
        let spec = format!(
            "  flavor: {}\n  url: {}\n  auth: {{method: {}, secretRef: {{name: c-cred}}}}\n{CA}\n{}",
            row.flavor, row.url, row.method, row.extra
        );
        let manifest = format!(
            "{}{}",
            world.ca_configmap(NS),
            connection(NS, "c", &spec, row.secret)
        );
        let out = world.check(&manifest).await;
        if out.json.is_none() {
            failures.push(format!("{}: no output: {}", row.id, out.stderr));
            continue;
        }
        // The recording answered: bbconn sent a request the replay matches (its path and query;
        // the replay is the first fault and has no other condition), and it was answered with
        // the recording's status. Without this, a path or query that drifted would meet the
        // simulator's own answers, and a row whose verdict they share would still pass.
        let recorded_status = u16::try_from(record["status"].as_u64().unwrap()).unwrap();
        let requests = world.sim.requests();
        let replayed = requests.iter().any(|q| {
            q.path.starts_with(row.at)
                && row
                    .query
                    .is_none_or(|want| q.query.as_deref().is_some_and(|have| have.contains(want)))
                && q.status == recorded_status
        });
        if !replayed {
            let sent: Vec<String> = requests
                .iter()
                .map(|q| {
                    format!(
                        "{} {}{} -> {}",
                        q.method,
                        q.path,
                        q.query
                            .as_deref()
                            .map(|x| format!("?{x}"))
                            .unwrap_or_default(),
                        q.status
                    )
                })
                .collect();
            failures.push(format!(
                "{}: the recording was never served (no request at {}{}); bbconn sent: {sent:?}",
                row.id,
                row.at,
                row.query.map(|q| format!(" with {q}")).unwrap_or_default()
            ));
        }
        for (cond, status, reason) in row.expect {
            let (s, rs, m) = out.condition("c", cond);
            if s != *status || (rs != *reason && *reason != "*") {
                failures.push(format!(
                    "{}: expected {cond}={status} {reason}, got {s} {rs}: {m}",
                    row.id
                ));
            }
        }
        failures.extend(
            out.misplaced_causes()
                .into_iter()
                .map(|m| format!("{}: {m}", row.id)),
        );
        if let Some((cond, text)) = row.says {
            let (_, _, m) = out.condition("c", cond);
            if !m.contains(text) {
                failures.push(format!("{}: {cond} does not say {text:?}: {m}", row.id));
            }
        }
        // A transient verdict is never a permanent one, and a refused credential never a
        // transient one: Stalled only where the cause stalls.
        let (ready, ready_reason, _) = out.condition("c", "Ready");
        let first = row.expect.first().map_or(String::new(), |(c, _, _)| {
            let (s, r, _) = out.condition("c", c);
            format!("{c}={s} {r}")
        });
        println!("| {} | {first} | Ready={ready} {ready_reason} |", row.id);
        if let Some(cause) = bbconn::catalogue::Cause::parse(&ready_reason) {
            let stalled = out.status("c")["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["type"] == "Stalled" && c["status"] == "True");
            if stalled != cause.stalls() {
                failures.push(format!("{}: Stalled={stalled} for {cause}", row.id));
            }
        }
        world.sim.shutdown().await;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Data Center 10 reports the version even while it serves the credential as anonymous.
#[tokio::test]
async fn an_anonymous_answer_still_reports_the_server_version() {
    let record = records()
        .into_iter()
        .find(|r| r["id"] == "dc-appprops-200-anonymous-10.4")
        .unwrap();
    let mut fixture = world_fixture();
    fixture
        .faults
        .insert(0, replay_fault(&record, APP_PROPS, None));
    let world = World::start_with(fixture).await;
    let spec = format!(
        "  flavor: DataCenter\n  url: {DC}\n  auth: {{method: AccessToken, secretRef: {{name: c-cred}}}}\n{CA}\n"
    );
    let manifest = format!(
        "{}{}",
        world.ca_configmap(NS),
        connection(NS, "c", &spec, DC_TOKEN)
    );
    let out = world.check(&manifest).await;
    assert_eq!(out.code, 1);
    assert_eq!(out.status("c")["server"]["version"], "10.4.1");
}
