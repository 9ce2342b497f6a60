//! Reading what `kubectl apply -f` would: BitbucketConnection, Secret and ConfigMap documents, in
//! several documents and files, checked as strictly as the API server would (unknown fields,
//! schema types, the CRD's CEL rules), with errors that name the file, document and field.

use crate::api::{BitbucketConnection, BitbucketConnectionSpec, CaBundleKind};
use crate::checks::{Lookup, Meta};
use crate::scrub::excerpt;
use base64::Engine;
use kube::CustomResourceExt;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use thiserror::Error;

/// Larger inputs are refused rather than parsed: a manifest set is kilobytes, not megabytes.
pub const MAX_FILE_BYTES: u64 = 8 << 20;

#[derive(Debug, Error)]
pub enum InputError {
    #[error("{file}: {detail}")]
    File { file: String, detail: String },
    #[error("{file}: document {doc}{what}: {detail}")]
    Document {
        file: String,
        doc: usize,
        what: String,
        detail: String,
    },
    #[error("no BitbucketConnection in {0}")]
    Empty(String),
}

/// A connection with everything it references.
#[derive(Clone, Debug)]
pub struct Connection {
    pub namespace: String,
    pub name: String,
    pub spec: BitbucketConnectionSpec,
    /// The Secret spec.auth names; None without spec.auth.
    pub secret: Option<Lookup>,
    pub ca_bundle: Option<Lookup>,
    /// Only when spec.network.egressProxy.secretRef is set; NotFound when not in the input
    /// (reported under NetworkPathValid, as the operator would).
    pub egress_proxy_secret: Option<Lookup>,
    /// Transport SSH: the key's Secret, and the object spec.git.ssh.knownHostsRef names.
    pub ssh_secret: Option<Lookup>,
    pub known_hosts: Option<Lookup>,
}

/// A Secret's or ConfigMap's data, and what bbconn reads of its metadata.
type Referenced = (BTreeMap<String, Vec<u8>>, Meta);

#[derive(Default)]
struct Objects {
    /// (file, document, namespace, name, spec)
    connections: Vec<(String, usize, String, String, BitbucketConnectionSpec)>,
    /// (kind, namespace, name) -> data
    data: BTreeMap<(&'static str, String, String), Referenced>,
}

pub fn load_files(
    paths: &[impl AsRef<Path>],
    default_namespace: &str,
) -> Result<Vec<Connection>, InputError> {
    let mut objects = Objects::default();
    for path in expand(paths).map_err(|(file, detail)| InputError::File { file, detail })? {
        let path = path.as_path();
        let file = path.display().to_string();
        let text = read_limited(path).map_err(|detail| InputError::File {
            file: file.clone(),
            detail,
        })?;
        parse_into(&file, &text, default_namespace, &mut objects)?;
    }
    let names: Vec<String> = paths
        .iter()
        .map(|p| p.as_ref().display().to_string())
        .collect();
    resolve(objects, &names.join(", "))
}

pub fn load_str(
    file: &str,
    text: &str,
    default_namespace: &str,
) -> Result<Vec<Connection>, InputError> {
    let mut objects = Objects::default();
    parse_into(file, text, default_namespace, &mut objects)?;
    resolve(objects, file)
}

/// Directories stand for their .yaml, .yml and .json files, in name order, as `kubectl apply -f`
/// takes them (not recursively).
fn expand(paths: &[impl AsRef<Path>]) -> Result<Vec<std::path::PathBuf>, (String, String)> {
    let mut out = Vec::new();
    for p in paths {
        let p = p.as_ref();
        if p.is_dir() {
            let mut files: Vec<_> = std::fs::read_dir(p)
                .map_err(|e| (p.display().to_string(), e.to_string()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| {
                    f.is_file()
                        && f.extension()
                            .is_some_and(|x| x == "yaml" || x == "yml" || x == "json")
                })
                .collect();
            files.sort();
            out.extend(files);
        } else {
            out.push(p.to_path_buf());
        }
    }
    Ok(out)
}

fn read_limited(path: &Path) -> Result<String, String> {
    let f: Box<dyn Read> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(path).map_err(|e| e.to_string())?)
    };
    let mut buf = Vec::new();
    f.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| e.to_string())?;
    if buf.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "larger than {} MiB; bbconn check reads manifests, not data",
            MAX_FILE_BYTES >> 20
        ));
    }
    String::from_utf8(buf).map_err(|e| {
        format!(
            "not UTF-8 text (byte {}): is this a binary file?",
            e.utf8_error().valid_up_to()
        )
    })
}

fn parse_into(
    file: &str,
    text: &str,
    default_ns: &str,
    out: &mut Objects,
) -> Result<(), InputError> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| InputError::File {
        file: file.to_string(),
        detail: format!("not valid YAML: {}", yaml_error(&e)),
    })?;
    let mut index = 0;
    for doc in docs {
        index += 1;
        if doc.is_null() {
            continue;
        }
        // `kubectl get -o yaml` wraps objects in a List.
        if doc.get("kind").and_then(Value::as_str) == Some("List") {
            let items = doc
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for item in items {
                add(file, index, item, default_ns, out)?;
            }
            continue;
        }
        add(file, index, doc, default_ns, out)?;
    }
    Ok(())
}

/// The parser's error in a user's terms: no advice about the parser's own options, and a long
/// value it quotes cut to an excerpt, with the location kept.
fn yaml_error(e: &serde_saphyr::Error) -> String {
    let options = serde_saphyr::render_options! {
        formatter: &serde_saphyr::UserMessageFormatter,
        snippets: serde_saphyr::SnippetMode::Off,
    };
    let message = e.render_with_options(options);
    if message.chars().count() <= MAX_DETAIL {
        return message;
    }
    match e.location() {
        Some(l) => format!(
            "{} (at line {}, column {})",
            excerpt(&message, MAX_DETAIL),
            l.line(),
            l.column()
        ),
        None => excerpt(&message, MAX_DETAIL).into_owned(),
    }
}

/// The longest message detail and the longest quoted value: a manifest's values can be
/// megabytes, its error messages should not be.
const MAX_DETAIL: usize = 240;
const MAX_QUOTED: usize = 60;

fn add(
    file: &str,
    doc: usize,
    v: Value,
    default_ns: &str,
    out: &mut Objects,
) -> Result<(), InputError> {
    let err = |what: String, detail: String| InputError::Document {
        file: file.to_string(),
        doc,
        what,
        detail: excerpt(&detail, MAX_DETAIL).into_owned(),
    };
    if !v.is_object() {
        return Err(err(
            String::new(),
            "not a Kubernetes object (expected a mapping with apiVersion and kind)".into(),
        ));
    }
    let kind = v
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let api_version = v
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let name = v
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let ns = v
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or(default_ns)
        .to_string();
    let what = format!(
        " ({} {}/{})",
        excerpt(&kind, MAX_QUOTED),
        excerpt(&ns, MAX_QUOTED),
        excerpt(&name, MAX_QUOTED)
    );
    if name.is_empty() {
        return Err(err(what, "metadata.name is missing".into()));
    }
    // As the API server: a name is a DNS subdomain (253), a namespace a DNS label (63).
    if name.len() > 253 {
        return Err(err(
            what,
            "metadata.name is longer than 253 characters".into(),
        ));
    }
    if ns.len() > 63 {
        return Err(err(
            what,
            "metadata.namespace is longer than 63 characters".into(),
        ));
    }
    match (api_version.as_str(), kind.as_str()) {
        ("bbconn.dev/v1alpha1", "BitbucketConnection") => {
            let violations = schema_violations(&v);
            if let Some(first) = violations.first() {
                return Err(err(what, first.clone()));
            }
            let obj: BitbucketConnection = serde_path_to_error::deserialize(v.clone())
                .map_err(|e| err(what.clone(), format!("field {}: {}", e.path(), e.inner())))?;
            if let Err(e) = obj.validate_cel() {
                let each: Vec<String> = e.iter().map(ToString::to_string).collect();
                return Err(err(
                    what,
                    format!(
                        "rejected by the CRD's validation rules: {}",
                        each.join("; ")
                    ),
                ));
            }
            out.connections
                .push((file.to_string(), doc, ns, name, obj.spec));
        }
        ("v1", "Secret") | ("v1", "ConfigMap") => {
            let (k, b64, plain): (&'static str, &str, &str) = if kind == "Secret" {
                ("Secret", "data", "stringData")
            } else {
                ("ConfigMap", "binaryData", "data")
            };
            let mut data = BTreeMap::new();
            if let Some(m) = v.get(b64) {
                let m = m
                    .as_object()
                    .ok_or_else(|| err(what.clone(), format!("{b64} must be a mapping")))?;
                for (key, val) in m {
                    let s = val.as_str().ok_or_else(|| {
                        err(
                            what.clone(),
                            format!("{b64}.{} must be a string", excerpt(key, MAX_QUOTED)),
                        )
                    })?;
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(s.trim())
                        .map_err(|_| {
                            err(
                                what.clone(),
                                format!("{b64}.{} is not valid base64", excerpt(key, MAX_QUOTED)),
                            )
                        })?;
                    data.insert(key.clone(), bytes);
                }
            }
            if let Some(m) = v.get(plain) {
                let m = m
                    .as_object()
                    .ok_or_else(|| err(what.clone(), format!("{plain} must be a mapping")))?;
                for (key, val) in m {
                    let s = val.as_str().ok_or_else(|| {
                        err(
                            what.clone(),
                            format!("{plain}.{} must be a string", excerpt(key, MAX_QUOTED)),
                        )
                    })?;
                    data.insert(key.clone(), s.as_bytes().to_vec());
                }
            }
            let meta = Meta {
                expires_at: v
                    .pointer("/metadata/annotations")
                    .and_then(|a| a.get(crate::checks::EXPIRES_AT))
                    .and_then(Value::as_str)
                    .map(str::to_string),
                resource_version: None,
            };
            out.data.insert((k, ns, name), (data, meta));
        }
        _ => {
            return Err(err(
                what,
                format!(
                    "{} {} is not something bbconn check reads (BitbucketConnection bbconn.dev/v1alpha1, v1 Secret, v1 ConfigMap)",
                    excerpt(&api_version, MAX_QUOTED),
                    excerpt(&kind, MAX_QUOTED)
                ),
            ));
        }
    }
    Ok(())
}

fn resolve(objects: Objects, files: &str) -> Result<Vec<Connection>, InputError> {
    if objects.connections.is_empty() {
        return Err(InputError::Empty(files.to_string()));
    }
    let mut out = Vec::new();
    for (file, doc, ns, name, spec) in objects.connections {
        let missing = |detail: String| InputError::Document {
            file: file.clone(),
            doc,
            what: format!(
                " (BitbucketConnection {}/{})",
                excerpt(&ns, MAX_QUOTED),
                excerpt(&name, MAX_QUOTED)
            ),
            detail: excerpt(&detail, MAX_DETAIL).into_owned(),
        };
        let find = |kind: &'static str, name: &str, field: &str| match objects.data.get(&(
            kind,
            ns.clone(),
            name.to_string(),
        )) {
            Some((d, m)) => Ok(Lookup::Found(d.clone(), m.clone())),
            None => Err(missing(format!(
                "{field} names {kind} {ns}/{name}, which is not in the input"
            ))),
        };
        let secret = match spec.auth_secret() {
            Some(n) => Some(find("Secret", n, "spec.auth.secretRef")?),
            None => None,
        };
        let ssh_secret = match spec.ssh_secret() {
            Some(n) => Some(find("Secret", n, "spec.git.ssh.secretRef")?),
            None => None,
        };
        let known_hosts = match spec.known_hosts_ref() {
            Some(r) => {
                let kind = match r.kind {
                    CaBundleKind::ConfigMap => "ConfigMap",
                    CaBundleKind::Secret => "Secret",
                };
                Some(find(kind, &r.name, "spec.git.ssh.knownHostsRef")?)
            }
            None => None,
        };
        let ca_bundle = match spec.tls.as_ref().and_then(|t| t.ca_bundle_ref.as_ref()) {
            None => None,
            Some(r) => {
                let kind = match r.kind {
                    CaBundleKind::ConfigMap => "ConfigMap",
                    CaBundleKind::Secret => "Secret",
                };
                match objects.data.get(&(kind, ns.clone(), r.name.clone())) {
                    Some((d, m)) => Some(Lookup::Found(d.clone(), m.clone())),
                    None => {
                        return Err(missing(format!(
                            "spec.tls.caBundleRef names {kind} {ns}/{}, which is not in the input",
                            r.name
                        )));
                    }
                }
            }
        };
        let egress_proxy_secret = spec.egress_proxy_secret().map(|n| {
            match objects.data.get(&("Secret", ns.clone(), n.to_string())) {
                Some((d, m)) => Lookup::Found(d.clone(), m.clone()),
                None => Lookup::NotFound,
            }
        });
        out.push(Connection {
            namespace: ns,
            name,
            spec,
            secret,
            ca_bundle,
            egress_proxy_secret,
            ssh_secret,
            known_hosts,
        });
    }
    Ok(out)
}

/// What the API server's schema validation would reject: unknown fields (as strict field
/// validation reports them, `unknown field .spec.auth.mehtod`), numbers out of range, strings
/// that miss their pattern or enum. Types are left to deserialization, which names the field.
pub fn schema_violations(obj: &Value) -> Vec<String> {
    let crd = BitbucketConnection::crd();
    let schema = crd
        .spec
        .versions
        .first()
        .and_then(|v| v.schema.as_ref())
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or(Value::Null);
    let mut out = Vec::new();
    walk(obj, &schema, String::new(), &mut out);
    out
}

fn walk(v: &Value, schema: &Value, path: String, out: &mut Vec<String>) {
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return;
    }
    match v {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            for (k, child) in map {
                // metadata is ObjectMeta, validated by the API server itself.
                if path.is_empty() && (k == "metadata" || k == "apiVersion" || k == "kind") {
                    continue;
                }
                let p = format!("{path}.{}", excerpt(k, MAX_QUOTED));
                match (props.and_then(|p| p.get(k)), additional) {
                    (Some(s), _) => walk(child, s, p, out),
                    (None, Some(s)) if s.is_object() => walk(child, s, p, out),
                    (None, Some(Value::Bool(true))) => {}
                    _ => out.push(format!("unknown field {p}")),
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    walk(item, s, format!("{path}[{i}]"), out);
                }
            }
        }
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or_default();
            if let Some(min) = schema
                .get("minimum")
                .and_then(Value::as_f64)
                .filter(|m| x < *m)
            {
                out.push(format!("field {path}: {n} is less than the minimum {min}"));
            }
            if let Some(max) = schema
                .get("maximum")
                .and_then(Value::as_f64)
                .filter(|m| x > *m)
            {
                out.push(format!(
                    "field {path}: {n} is greater than the maximum {max}"
                ));
            }
        }
        Value::String(s) => {
            if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
                && regex::Regex::new(pattern).is_ok_and(|re| !re.is_match(s))
            {
                out.push(format!(
                    "field {path}: {:?} does not match {pattern}",
                    excerpt(s, MAX_QUOTED)
                ));
            }
            if let Some(max) = schema
                .get("maxLength")
                .and_then(Value::as_u64)
                .filter(|m| (s.chars().count() as u64) > *m)
            {
                out.push(format!(
                    "field {path}: {:?} is longer than {max} characters",
                    excerpt(s, MAX_QUOTED)
                ));
            }
            if let Some(min) = schema
                .get("minLength")
                .and_then(Value::as_u64)
                .filter(|m| (s.chars().count() as u64) < *m)
            {
                out.push(format!("field {path}: shorter than {min} characters"));
            }
            if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
                && !allowed.iter().any(|a| a.as_str() == Some(s))
            {
                let names: Vec<&str> = allowed.iter().filter_map(Value::as_str).collect();
                out.push(format!(
                    "field {path}: {:?} is not one of {}",
                    excerpt(s, MAX_QUOTED),
                    names.join(", ")
                ));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
apiVersion: bbconn.dev/v1alpha1
kind: BitbucketConnection
metadata: {name: c, namespace: ci}
spec:
  flavor: DataCenter
  url: https://bitbucket.example.com
  auth: {method: AccessToken, secretRef: {name: tok}}
---
apiVersion: v1
kind: Secret
metadata: {name: tok, namespace: ci}
stringData: {token: abc}
"#;

    #[test]
    fn reads_connections_and_their_secrets() {
        let c = load_str("m.yaml", GOOD, "default").unwrap();
        assert_eq!(c.len(), 1);
        assert!(
            matches!(&c[0].secret, Some(Lookup::Found(d, _)) if d.get("token").map(Vec::as_slice) == Some(&b"abc"[..]))
        );
    }

    #[test]
    fn names_the_unknown_field() {
        let bad = GOOD.replace(
            "method: AccessToken",
            "mehtod: AccessToken, method: AccessToken",
        );
        let e = load_str("m.yaml", &bad, "default").unwrap_err().to_string();
        assert!(e.contains("unknown field .spec.auth.mehtod"), "{e}");
        assert!(e.contains("document 1"), "{e}");
    }

    #[test]
    fn cel_rules_apply_offline() {
        let bad = GOOD.replace(
            "https://bitbucket.example.com",
            "ftp://bitbucket.example.com",
        );
        let e = load_str("m.yaml", &bad, "default").unwrap_err().to_string();
        assert!(
            e.contains("spec.url must be an absolute http(s) URL"),
            "{e}"
        );
    }
}
