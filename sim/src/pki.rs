//! Certificate minting for the simulator's TLS listeners.
//!
//! One CA ("bbconn test CA") signs every leaf except `unknownca`, which a second, unrelated CA
//! signs. All keys are ECDSA P-256. Leaves carry the subject CN of their first host, the hosts as
//! SANs (IP literals become IP SANs), key usage digitalSignature and EKU serverAuth.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// Subject and issuer CN of the simulator's CA.
pub const CA_COMMON_NAME: &str = "bbconn test CA";
/// Subject CN of the unrelated CA that signs `unknownca` leaves.
pub const OTHER_CA_COMMON_NAME: &str = "bbconn unrelated CA";
/// The only SAN of a `wronghost` leaf.
pub const WRONG_HOST: &str = "wrong.example.invalid";
/// How long an `expiringsoon` leaf has left.
pub const EXPIRING_SOON_DAYS: i64 = 10;

/// What kind of leaf certificate a TLS listener presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CertMode {
    /// Signed by the CA, valid now (one day ago to a year from now), SANs = hosts.
    Good,
    /// Signed by the CA, notAfter yesterday.
    Expired,
    /// Signed by the CA, notBefore tomorrow.
    NotYetValid,
    /// Signed by the CA, valid now, but its only SAN is `wrong.example.invalid`.
    WrongHost,
    /// Valid now, SANs = hosts, but signed by an unrelated CA.
    UnknownCa,
    /// Signed by the CA, valid now, notAfter 10 days from now.
    ExpiringSoon,
}

/// Errors while minting or loading certificates.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("reading or writing {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a PEM certificate or key: {message}")]
    Pem { path: String, message: String },
}

struct Ca {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    key_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn params(common_name: &str) -> CertificateParams {
        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        dn.push(DnType::OrganizationName, "bbconn");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = now - Duration::days(2);
        params.not_after = now + Duration::days(3650);
        params
    }

    fn generate(common_name: &str) -> Result<Ca, PkiError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let params = Self::params(common_name);
        let cert = params.self_signed(&key)?;
        Ok(Ca {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            key_pem: key.serialize_pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// Rebuilds the issuer from a certificate and key this module wrote earlier: the subject DN is
    /// the fixed one of [`Ca::params`], so re-deriving it from the parameters gives the same issuer
    /// name and authority key identifier without parsing the certificate.
    fn load(
        cert_pem: String,
        key_pem: String,
        cert_path: &str,
        key_path: &str,
    ) -> Result<Ca, PkiError> {
        let cert_der =
            CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|e| PkiError::Pem {
                path: cert_path.to_owned(),
                message: e.to_string(),
            })?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| PkiError::Pem {
            path: key_path.to_owned(),
            message: e.to_string(),
        })?;
        Ok(Ca {
            cert_pem,
            cert_der,
            key_pem,
            issuer: Issuer::new(Self::params(CA_COMMON_NAME), key),
        })
    }
}

/// The simulator's certificate authority, plus an unrelated one.
pub struct Pki {
    ca: Ca,
    other: Ca,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki").finish_non_exhaustive()
    }
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
}

impl Pki {
    /// Mints a fresh CA and an unrelated second CA.
    ///
    /// Generating an ECDSA P-256 key and self-signing fixed parameters cannot fail short of a
    /// broken system RNG; [`Pki::try_new`] reports that case instead of panicking.
    #[allow(clippy::expect_used)]
    pub fn new() -> Pki {
        Self::try_new().expect("minting a P-256 CA with fixed parameters")
    }

    pub fn try_new() -> Result<Pki, PkiError> {
        Ok(Pki {
            ca: Ca::generate(CA_COMMON_NAME)?,
            other: Ca::generate(OTHER_CA_COMMON_NAME)?,
        })
    }

    /// Reuses `dir/ca.crt` and `dir/ca.key` when both exist (as written by [`Pki::save`]),
    /// otherwise mints a new CA. The unrelated CA is always fresh.
    pub fn load_or_create(dir: &Path) -> Result<Pki, PkiError> {
        let cert_path = dir.join("ca.crt");
        let key_path = dir.join("ca.key");
        if cert_path.is_file() && key_path.is_file() {
            let read = |p: &Path| {
                std::fs::read_to_string(p).map_err(|source| PkiError::Io {
                    path: p.display().to_string(),
                    source,
                })
            };
            let ca = Ca::load(
                read(&cert_path)?,
                read(&key_path)?,
                &cert_path.display().to_string(),
                &key_path.display().to_string(),
            )?;
            Ok(Pki {
                ca,
                other: Ca::generate(OTHER_CA_COMMON_NAME)?,
            })
        } else {
            Self::try_new()
        }
    }

    /// Writes `dir/ca.crt` and `dir/ca.key` (creating `dir`).
    pub fn save(&self, dir: &Path) -> Result<(), PkiError> {
        let io = |p: &Path, source| PkiError::Io {
            path: p.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let cert_path = dir.join("ca.crt");
        std::fs::write(&cert_path, &self.ca.cert_pem).map_err(|e| io(&cert_path, e))?;
        let key_path = dir.join("ca.key");
        std::fs::write(&key_path, &self.ca.key_pem).map_err(|e| io(&key_path, e))?;
        Ok(())
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> String {
        self.ca.cert_pem.clone()
    }

    /// The CA certificate, DER.
    pub fn ca_der(&self) -> CertificateDer<'static> {
        self.ca.cert_der.clone()
    }

    /// The unrelated CA's certificate, PEM (a trust bundle that does not verify our leaves).
    pub fn other_ca_pem(&self) -> String {
        self.other.cert_pem.clone()
    }

    /// A leaf certificate chain (leaf first, then its issuing CA) and its private key.
    ///
    /// Fails only for hosts that are not valid DNS names (non-ASCII); see [`Pki::try_leaf`].
    #[allow(clippy::expect_used)]
    pub fn leaf(
        &self,
        mode: CertMode,
        hosts: &[String],
    ) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        self.try_leaf(mode, hosts)
            .expect("minting a leaf certificate (hosts must be ASCII DNS names or IP literals)")
    }

    /// Like [`Pki::leaf`], as PEM: (certificate chain, PKCS#8 private key).
    #[allow(clippy::expect_used)]
    pub fn leaf_pem(&self, mode: CertMode, hosts: &[String]) -> (String, String) {
        self.try_leaf_pem(mode, hosts)
            .expect("minting a leaf certificate (hosts must be ASCII DNS names or IP literals)")
    }

    pub fn try_leaf(
        &self,
        mode: CertMode,
        hosts: &[String],
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), PkiError> {
        let (chain, key) = self.mint(mode, hosts)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Ok((chain.into_iter().map(|(der, _)| der).collect(), key))
    }

    pub fn try_leaf_pem(
        &self,
        mode: CertMode,
        hosts: &[String],
    ) -> Result<(String, String), PkiError> {
        let (chain, key) = self.mint(mode, hosts)?;
        let pem = chain.into_iter().map(|(_, pem)| pem).collect::<String>();
        Ok((pem, key.serialize_pem()))
    }

    #[allow(clippy::type_complexity)]
    fn mint(
        &self,
        mode: CertMode,
        hosts: &[String],
    ) -> Result<(Vec<(CertificateDer<'static>, String)>, KeyPair), PkiError> {
        let now = OffsetDateTime::now_utc();
        let wrong = [WRONG_HOST.to_owned()];
        let names: &[String] = if mode == CertMode::WrongHost {
            &wrong
        } else {
            hosts
        };
        let mut params = CertificateParams::default();
        params.subject_alt_names = names
            .iter()
            .map(|h| match h.parse::<std::net::IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => h.clone().try_into().map(SanType::DnsName),
            })
            .collect::<Result<Vec<_>, rcgen::Error>>()?;
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            names.first().map(String::as_str).unwrap_or("bbconn-sim"),
        );
        dn.push(DnType::OrganizationName, "bbconn simulator");
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let (not_before, not_after) = match mode {
            CertMode::Good | CertMode::WrongHost | CertMode::UnknownCa => {
                (now - Duration::days(1), now + Duration::days(365))
            }
            CertMode::Expired => (now - Duration::days(90), now - Duration::days(1)),
            CertMode::NotYetValid => (now + Duration::days(1), now + Duration::days(365)),
            CertMode::ExpiringSoon => (
                now - Duration::days(1),
                now + Duration::days(EXPIRING_SOON_DAYS),
            ),
        };
        params.not_before = not_before;
        params.not_after = not_after;
        let ca = if mode == CertMode::UnknownCa {
            &self.other
        } else {
            &self.ca
        };
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let leaf = params.signed_by(&key, &ca.issuer)?;
        Ok((
            vec![
                (leaf.der().clone(), leaf.pem()),
                (ca.cert_der.clone(), ca.cert_pem.clone()),
            ],
            key,
        ))
    }
}
