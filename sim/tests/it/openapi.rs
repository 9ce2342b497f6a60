//! Every JSON body the simulator serves validates against Atlassian's OpenAPI descriptions in
//! `shared/bitbucket-openapi/` (beside this repository).
//!
//! OpenAPI 3.0 schema objects are close to JSON Schema draft 4, so each schema is validated as
//! draft 4 with the document's `components` embedded, so `#/components/schemas/...` resolve.
//! Neither description uses `nullable`. Where a description disagrees with documented behaviour,
//! the test patches the schema (or the instance) and says why; the simulator follows
//! docs/design/bitbucket-api.md. Neither description covers the OAuth token endpoints
//! (`/site/oauth2/access_token`, `/rest/oauth2/latest/token`), so their bodies are checked
//! against RFC 6749 section 5 by the flavour tests instead.

use std::path::PathBuf;
use std::sync::OnceLock;

use jsonschema::{Draft, Validator};
use serde_json::{Value, json};

use crate::common::{basic, bearer, start_default};

fn spec_path(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/bitbucket-openapi")
        .join(file)
}

fn load(file: &str) -> Value {
    let text = std::fs::read_to_string(spec_path(file))
        .unwrap_or_else(|e| panic!("{}: {e}", spec_path(file).display()));
    serde_json::from_str(&text).unwrap()
}

fn cloud_spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        let mut spec = load("cloud.swagger.v3.json");
        // docs/design/bitbucket-api.md: the 403 for missing scopes carries `error.detail` as an object
        // {granted, required} (Renovate reads detail.required); the description types it as a
        // string.
        spec["components"]["schemas"]["error"]["properties"]["error"]["properties"]["detail"] =
            json!({"type": ["string", "object"]});
        spec
    })
}

fn dc_spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        let mut spec = load("datacenter-9.2.swagger.v3.json");
        let schemas = &mut spec["components"]["schemas"];
        // Data Center sends `createdDate` (and `lastAuthenticated`) as epoch milliseconds (Eclipse
        // Che's client reads them as long); the description says a date-time string.
        schemas["RestAccessToken"]["properties"]["createdDate"] = json!({"type": "integer"});
        // docs/design/bitbucket-api.md: errors are {"context":null,...}; the description has no nullable.
        schemas["RestErrorMessage"]["properties"]["context"] = json!({"type": ["string", "null"]});
        schemas["RestErrorMessage"]["properties"]["exceptionName"] =
            json!({"type": ["string", "null"]});
        spec
    })
}

fn validator(spec: &Value, schema: &Value) -> Validator {
    let mut root = schema.clone();
    root["components"] = spec["components"].clone();
    jsonschema::options()
        .with_draft(Draft::Draft4)
        .should_validate_formats(true)
        .build(&root)
        .unwrap()
}

fn component(spec: &Value, name: &str) -> Validator {
    assert!(
        spec["components"]["schemas"].get(name).is_some(),
        "no schema {name}"
    );
    validator(
        spec,
        &json!({"$ref": format!("#/components/schemas/{name}")}),
    )
}

fn response(spec: &Value, path: &str, status: &str) -> Validator {
    let schema =
        &spec["paths"][path]["get"]["responses"][status]["content"]["application/json"]["schema"];
    assert!(schema.is_object(), "no schema for GET {path} {status}");
    validator(spec, schema)
}

#[track_caller]
fn check(v: &Validator, instance: &Value, what: &str) {
    let errors: Vec<String> = v
        .iter_errors(instance)
        .map(|e| format!("{e} (at {})", e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not match the OpenAPI schema:\n{}\n{instance:#}",
        errors.join("\n")
    );
}

/// Bitbucket's ssh clone link is scp-style (`git@bitbucket.org:ws/repo.git`), which is not an
/// RFC 3986 URI although the description declares `format: uri` for every link.
fn without_scp_links(mut v: Value) -> Value {
    fn strip(repo: &mut Value) {
        if let Some(clone) = repo["links"]["clone"].as_array_mut() {
            clone.retain(|l| l["name"] != "ssh");
        }
    }
    if let Some(values) = v["values"].as_array_mut() {
        values.iter_mut().for_each(strip);
    } else {
        strip(&mut v);
    }
    v
}

#[tokio::test]
async fn cloud_bodies_match_the_description() {
    let sim = start_default().await;
    let spec = cloud_spec();
    let mut c = sim.conn("cloud", "api.bitbucket.org").await;
    let alice = basic("alice@example.com", "ATATT-alice-good");

    let user = c.get("/2.0/user", Some(&alice)).await.json();
    check(&response(spec, "/user", "200"), &user, "GET /2.0/user");
    check(&component(spec, "user"), &user, "GET /2.0/user as `user`");
    let unauth = c.get("/2.0/user", None).await.json();
    check(
        &response(spec, "/user", "401"),
        &unauth,
        "GET /2.0/user 401",
    );

    let ws = c.get("/2.0/workspaces/acme", Some(&alice)).await.json();
    check(
        &response(spec, "/workspaces/{workspace}", "200"),
        &ws,
        "GET /2.0/workspaces/acme",
    );
    let missing = c.get("/2.0/workspaces/nope", Some(&alice)).await.json();
    check(
        &response(spec, "/workspaces/{workspace}", "404"),
        &missing,
        "workspace 404",
    );

    let path = "/repositories/{workspace}/{repo_slug}";
    let repo = c
        .get("/2.0/repositories/acme/app", Some(&alice))
        .await
        .json();
    check(
        &response(spec, path, "200"),
        &without_scp_links(repo),
        "GET repository",
    );
    let public = c.get("/2.0/repositories/acme/site", None).await.json();
    check(
        &response(spec, path, "200"),
        &without_scp_links(public),
        "GET public repository",
    );
    let forbidden = c
        .get(
            "/2.0/repositories/acme/app",
            Some(&basic("alice@example.com", "ATATT-alice-write-only")),
        )
        .await
        .json();
    check(
        &response(spec, path, "403"),
        &forbidden,
        "repository 403 (scopes)",
    );
    let missing = c
        .get("/2.0/repositories/acme/nope", Some(&alice))
        .await
        .json();
    check(&response(spec, path, "404"), &missing, "repository 404");

    let page = c
        .get("/2.0/repositories/acme?role=member&pagelen=1", Some(&alice))
        .await
        .json();
    assert!(page["next"].is_string());
    check(
        &response(spec, "/repositories/{workspace}", "200"),
        &without_scp_links(page),
        "repository page",
    );
    let public = c.get("/2.0/repositories", Some(&alice)).await.json();
    assert_eq!(public["values"].as_array().map(Vec::len), Some(1));
    check(
        &response(spec, "/repositories", "200"),
        &without_scp_links(public),
        "public repositories",
    );
    let no_api = c.get("/2.0/nothing/here", Some(&alice)).await.json();
    check(&component(spec, "error"), &no_api, "no API here");
    let page = c
        .get("/2.0/repositories/acme?q=slug%3D%22app%22", Some(&alice))
        .await
        .json();
    check(
        &response(spec, "/repositories/{workspace}", "200"),
        &without_scp_links(page),
        "filtered page",
    );
}

#[tokio::test]
async fn datacenter_bodies_match_the_description() {
    let sim = start_default().await;
    let spec = dc_spec();
    let mut c = sim.conn("dc", "bitbucket.internal").await;
    let admin = bearer("BBDC-alice-admin");

    let props = c
        .get("/rest/api/latest/application-properties", None)
        .await
        .json();
    check(
        &response(spec, "/api/latest/application-properties", "200"),
        &props,
        "application-properties",
    );

    let path = "/api/latest/projects/{projectKey}/repos/{repositorySlug}";
    let repo = c
        .get("/rest/api/latest/projects/PROJ/repos/app", Some(&admin))
        .await
        .json();
    check(&response(spec, path, "200"), &repo, "GET repository");
    let missing = c
        .get("/rest/api/latest/projects/PROJ/repos/nope", Some(&admin))
        .await
        .json();
    check(&response(spec, path, "404"), &missing, "repository 404");
    let bad = c
        .get(
            "/rest/api/latest/projects/PROJ/repos/app",
            Some(&bearer("nope")),
        )
        .await
        .json();
    check(&response(spec, path, "401"), &bad, "repository 401");

    let repos = c
        .get(
            "/rest/api/latest/repos?permission=REPO_ADMIN&limit=1",
            Some(&admin),
        )
        .await
        .json();
    assert!(repos["nextPageStart"].is_number());
    check(
        &response(spec, "/api/latest/repos", "200"),
        &repos,
        "GET repos",
    );
    let bad = c
        .get("/rest/api/latest/repos?permission=NOPE", Some(&admin))
        .await
        .json();
    check(
        &response(spec, "/api/latest/repos", "400"),
        &bad,
        "GET repos 400",
    );

    let projects = c
        .get(
            "/rest/api/latest/projects?permission=PROJECT_READ",
            Some(&admin),
        )
        .await
        .json();
    check(
        &response(spec, "/api/latest/projects", "200"),
        &projects,
        "GET projects",
    );
    let project = c
        .get("/rest/api/latest/projects/PROJ", Some(&admin))
        .await
        .json();
    check(
        &response(spec, "/api/latest/projects/{projectKey}", "200"),
        &project,
        "GET project",
    );
    check(
        &component(spec, "RestProject"),
        &project,
        "GET project as RestProject",
    );

    let all = c.get("/rest/api/latest/users", Some(&admin)).await.json();
    check(
        &response(spec, "/api/latest/users", "200"),
        &all,
        "GET users",
    );
    let anon = c.get("/rest/api/latest/users", None).await.json();
    check(
        &response(spec, "/api/latest/users", "401"),
        &anon,
        "GET users 401",
    );
    let denied = c
        .get("/rest/api/latest/admin/permissions/users", Some(&admin))
        .await
        .json();
    check(
        &response(spec, "/api/latest/admin/permissions/users", "401"),
        &denied,
        "admin users 401",
    );
    let users = c
        .get(
            "/rest/api/latest/projects/PROJ/repos/app/permissions/users",
            Some(&admin),
        )
        .await
        .json();
    check(
        &response(
            spec,
            "/api/latest/projects/{projectKey}/repos/{repositorySlug}/permissions/users",
            "200",
        ),
        &users,
        "repository permissions",
    );

    let tokens = c
        .get("/rest/access-tokens/latest/users/alice", Some(&admin))
        .await
        .json();
    check(
        &response(spec, "/access-tokens/latest/users/{userSlug}", "200"),
        &tokens,
        "token page",
    );
    let denied = c
        .get("/rest/access-tokens/latest/users/bob", Some(&admin))
        .await
        .json();
    check(
        &response(spec, "/access-tokens/latest/users/{userSlug}", "401"),
        &denied,
        "token page 401",
    );
    let token = c
        .get(
            "/rest/access-tokens/latest/users/alice/100000000001",
            Some(&admin),
        )
        .await
        .json();
    check(
        &response(
            spec,
            "/access-tokens/latest/users/{userSlug}/{tokenId}",
            "200",
        ),
        &token,
        "token",
    );
    check(
        &component(spec, "RestApplicationUser"),
        &token["user"],
        "token user",
    );
    let gone = c
        .get("/rest/access-tokens/latest/users/alice/1", Some(&admin))
        .await
        .json();
    check(
        &response(
            spec,
            "/access-tokens/latest/users/{userSlug}/{tokenId}",
            "404",
        ),
        &gone,
        "token 404",
    );
}

/// The validators are not vacuous: wrong shapes fail.
#[test]
fn validators_reject_wrong_shapes() {
    let cloud = cloud_spec();
    let repo = component(cloud, "repository");
    assert!(repo.is_valid(&json!({"type": "repository", "scm": "git"})));
    assert!(!repo.is_valid(&json!({"type": "repository", "scm": "hg"})));
    assert!(!repo.is_valid(&json!({"type": "repository", "is_private": "yes"})));
    assert!(!repo.is_valid(&json!({"scm": "git"})), "type is required");
    // The scp-style ssh link really is what `format: uri` rejects (see without_scp_links).
    let ssh = json!({"type": "repository", "links": {"clone": [{"name": "ssh", "href": "git@bitbucket.org:acme/app.git"}]}});
    assert!(!repo.is_valid(&ssh));
    let page = response(cloud, "/repositories/{workspace}", "200");
    assert!(
        !page.is_valid(&json!({"values": [], "unexpected": 1})),
        "additionalProperties: false"
    );
    let dc = dc_spec();
    let props = component(dc, "RestApplicationProperties");
    assert!(!props.is_valid(&json!({"version": 9})));
    let token = component(dc, "RestAccessToken");
    assert!(!token.is_valid(&json!({"id": 1})));
}
