//! Keys: the committed host keys (sim/keys/, test keys only), the committed client keys tests
//! and the demo use, known_hosts lines, and the fixture's public keys with what each grants.

use std::path::{Path, PathBuf};

use russh::keys::ssh_key::public::KeyData;
use russh::keys::{HashAlg, PrivateKey, PublicKey};

use crate::fixture::{DcKeyPermission, Fixture, Flavor};

const CLOUD_ED25519: &str = include_str!("../../keys/cloud_ed25519");
const CLOUD_ECDSA: &str = include_str!("../../keys/cloud_ecdsa");
const CLOUD_RSA: &str = include_str!("../../keys/cloud_rsa");
const CLOUD_RSA_RETIRED: &str = include_str!("../../keys/cloud_rsa_retired");
const DC_RSA: &str = include_str!("../../keys/dc_rsa");

/// The private host keys a listener serves: Cloud ed25519, ECDSA P-256 and RSA 3072 (the RSA
/// one replaced by the retired RSA 2048 with `retired`); Data Center one RSA 2048.
pub(crate) fn host_keys(flavour: Flavor, retired: bool) -> Result<Vec<PrivateKey>, String> {
    let pems: &[&str] = match (flavour, retired) {
        (Flavor::Cloud, false) => &[CLOUD_ED25519, CLOUD_ECDSA, CLOUD_RSA],
        (Flavor::Cloud, true) => &[CLOUD_ED25519, CLOUD_ECDSA, CLOUD_RSA_RETIRED],
        (Flavor::Datacenter, _) => &[DC_RSA],
    };
    pems.iter()
        .map(|p| PrivateKey::from_openssh(p).map_err(|e| format!("committed host key: {e}")))
        .collect()
}

/// The host keys a flavour publishes now (Cloud: the current three, as bitbucket.org lists
/// them; Data Center: its one RSA key), as OpenSSH public key lines without a comment: what a
/// client's known_hosts holds when it pinned the keys before connecting.
pub fn published_host_keys(flavour: Flavor) -> Vec<String> {
    host_keys(flavour, false)
        .unwrap_or_default()
        .iter()
        .filter_map(|k| public_line(k.public_key()))
        .collect()
}

/// `algorithm base64`, without the comment.
pub(crate) fn public_line(key: &PublicKey) -> Option<String> {
    PublicKey::new(key.key_data().clone(), "").to_openssh().ok()
}

/// known_hosts lines for `host` (`[host]:port` when the port is not 22) and each key line.
pub fn known_hosts_lines(host: &str, port: u16, key_lines: &[String]) -> Vec<String> {
    let name = if port == 22 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    };
    key_lines.iter().map(|k| format!("{name} {k}")).collect()
}

/// A committed client key pair (sim/keys/clients/) for tests and the demo: test keys only.
#[derive(Debug, Clone, Copy)]
pub struct ClientKey {
    /// The file name under sim/keys/clients/.
    pub name: &'static str,
    /// The OpenSSH private key file's text.
    pub private: &'static str,
    /// The `.pub` file's text.
    pub public: &'static str,
    /// The passphrase, for the one encrypted key.
    pub passphrase: Option<&'static str>,
}

macro_rules! client_key {
    ($const:ident, $name:literal, $pass:expr) => {
        pub const $const: ClientKey = ClientKey {
            name: $name,
            private: include_str!(concat!("../../keys/clients/", $name)),
            public: include_str!(concat!("../../keys/clients/", $name, ".pub")),
            passphrase: $pass,
        };
    };
}

client_key!(ALICE_ED25519, "alice_ed25519", None);
client_key!(ALICE_RSA, "alice_rsa", None);
client_key!(BOB_ED25519, "bob_ed25519", None);
client_key!(DEPLOY_ED25519, "deploy_ed25519", None);
client_key!(DEPLOY_RSA, "deploy_rsa", None);
client_key!(STRANGER_ED25519, "stranger_ed25519", None);
client_key!(
    ENCRYPTED_ED25519,
    "encrypted_ed25519",
    Some("correct horse")
);

/// Every committed client key.
pub const CLIENT_KEYS: &[ClientKey] = &[
    ALICE_ED25519,
    ALICE_RSA,
    BOB_ED25519,
    DEPLOY_ED25519,
    DEPLOY_RSA,
    STRANGER_ED25519,
    ENCRYPTED_ED25519,
];

impl ClientKey {
    /// The public key line, as a fixture lists it.
    pub fn public_line(&self) -> &'static str {
        self.public.trim()
    }

    /// The private key, decrypted when it has a passphrase.
    pub fn private_key(&self) -> Result<PrivateKey, String> {
        let key = PrivateKey::from_openssh(self.private).map_err(|e| e.to_string())?;
        match self.passphrase {
            Some(p) => key.decrypt(p).map_err(|e| e.to_string()),
            None => Ok(key),
        }
    }

    /// `SHA256:...`, as OpenSSH and [`crate::ssh::SshAuth::fingerprint`] print it.
    pub fn fingerprint(&self) -> String {
        PublicKey::from_openssh(self.public_line())
            .map(|k| k.fingerprint(HashAlg::Sha256).to_string())
            .unwrap_or_default()
    }

    /// Writes `dir/name` (mode 0600, as ssh requires of identity files) and `dir/name.pub`;
    /// returns the private key's path, for `ssh -i`.
    pub fn write_to(&self, dir: &Path) -> std::io::Result<PathBuf> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let path = dir.join(self.name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)?;
        f.write_all(self.private.as_bytes())?;
        std::fs::write(dir.join(format!("{}.pub", self.name)), self.public)?;
        Ok(path)
    }
}

/// What a fixture key lets its holder do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Grant {
    /// A Cloud user's key: that user's repository access.
    CloudUser(String),
    /// A Cloud access key: read-only, this repository.
    CloudRepo { workspace: String, slug: String },
    /// A Data Center user's key: that user's permissions.
    DcUser(String),
    DcProject {
        project: String,
        permission: DcKeyPermission,
    },
    DcRepo {
        project: String,
        slug: String,
        permission: DcKeyPermission,
    },
}

impl Grant {
    pub(crate) fn flavour(&self) -> Flavor {
        match self {
            Grant::CloudUser(_) | Grant::CloudRepo { .. } => Flavor::Cloud,
            _ => Flavor::Datacenter,
        }
    }

    fn is_user(&self) -> bool {
        matches!(self, Grant::CloudUser(_) | Grant::DcUser(_))
    }
}

/// Every fixture key with what it grants.
pub(crate) struct KeyIndex {
    entries: Vec<(KeyData, Grant)>,
}

impl KeyIndex {
    /// Parses every key of the fixture. Refused as Bitbucket refuses adding them: a key that is
    /// not an OpenSSH public key line, a user key on two accounts, a key both a user's and an
    /// access key (in one flavour).
    pub(crate) fn new(f: &Fixture) -> Result<KeyIndex, String> {
        let mut entries: Vec<(KeyData, Grant)> = Vec::new();
        let mut add = |line: &str, grant: Grant, whose: &str| -> Result<(), String> {
            let key = PublicKey::from_openssh(line.trim())
                .map_err(|e| format!("{whose}: not an OpenSSH public key line ({e}): {line:?}"))?;
            let data = key.key_data().clone();
            for (other, g) in &entries {
                if *other == data
                    && g.flavour() == grant.flavour()
                    && (g.is_user() || grant.is_user())
                    && *g != grant
                {
                    return Err(format!(
                        "{whose}: key {} is already registered ({g:?})",
                        key.fingerprint(HashAlg::Sha256)
                    ));
                }
            }
            entries.push((data, grant));
            Ok(())
        };
        for u in &f.cloud.users {
            for k in &u.ssh_keys {
                let whose = format!("cloud user {}", u.username);
                add(k, Grant::CloudUser(u.username.clone()), &whose)?;
            }
        }
        for w in &f.cloud.workspaces {
            for r in &w.repositories {
                for k in &r.access_keys {
                    let grant = Grant::CloudRepo {
                        workspace: w.slug.clone(),
                        slug: r.slug.clone(),
                    };
                    add(k, grant, &format!("cloud repository {}/{}", w.slug, r.slug))?;
                }
            }
        }
        for u in &f.datacenter.users {
            for k in &u.ssh_keys {
                add(
                    k,
                    Grant::DcUser(u.name.clone()),
                    &format!("DC user {}", u.name),
                )?;
            }
        }
        for p in &f.datacenter.projects {
            for k in &p.access_keys {
                let grant = Grant::DcProject {
                    project: p.key.clone(),
                    permission: k.permission,
                };
                add(&k.key, grant, &format!("DC project {}", p.key))?;
            }
            for r in &p.repositories {
                for k in &r.access_keys {
                    let grant = Grant::DcRepo {
                        project: p.key.clone(),
                        slug: r.slug.clone(),
                        permission: k.permission,
                    };
                    add(
                        &k.key,
                        grant,
                        &format!("DC repository {}/{}", p.key, r.slug),
                    )?;
                }
            }
        }
        Ok(KeyIndex { entries })
    }

    /// What `key` grants on a listener of `flavour` (empty: an unknown key).
    pub(crate) fn grants(&self, flavour: Flavor, key: &PublicKey) -> Vec<Grant> {
        self.entries
            .iter()
            .filter(|(k, g)| k == key.key_data() && g.flavour() == flavour)
            .map(|(_, g)| g.clone())
            .collect()
    }
}
