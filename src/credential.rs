//! Credentials as they travel inside bbconn: values that never print.

use base64::Engine;
use http::HeaderValue;
use std::fmt;

/// A secret value, held by the `secrecy` crate: zeroed when dropped, Debug and Display print a
/// placeholder (so a value cannot reach a log line, an event, a status or an error message by
/// accident), and `expose` is the one way to the bytes, at the point of use.
#[derive(Clone)]
pub struct SecretString(secrecy::SecretString);

impl SecretString {
    pub fn new(s: String) -> Self {
        SecretString(s.into())
    }
    pub fn expose(&self) -> &str {
        use secrecy::ExposeSecret;
        self.0.expose_secret()
    }
}

// Credentials are compared (a rotated Secret, equal probe inputs) and hashed only through
// their exposed values, never printed.
impl PartialEq for SecretString {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for SecretString {}

impl std::hash::Hash for SecretString {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.expose().hash(state);
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Credential {
    /// Cloud repository/project/workspace access token, Data Center HTTP access token: Bearer.
    AccessToken {
        token: SecretString,
        token_id: Option<String>,
    },
    /// Cloud API token: Basic email:token.
    ApiToken {
        email: SecretString,
        token: SecretString,
    },
    Basic {
        username: SecretString,
        password: SecretString,
    },
    /// Never sent: Bitbucket Cloud retired app passwords.
    AppPassword {
        username: SecretString,
        password: SecretString,
    },
    OAuthClient {
        client_id: SecretString,
        client_secret: SecretString,
    },
    OAuthAppLink {
        client_id: SecretString,
        client_secret: SecretString,
        redirect_url: SecretString,
    },
}

/// What a consumer (Argo CD, Flux) sends to git, read from its own Secret
/// (spec.auth.secretRef.format): git is checked with exactly this.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum GitCredential {
    /// The Secret's username and password, as Basic. The user name is no secret: status.git
    /// and messages name it.
    Basic {
        username: String,
        password: SecretString,
    },
    /// The Secret's bearerToken, as `Authorization: Bearer`.
    Bearer { token: SecretString },
}

impl GitCredential {
    pub fn authorization(&self) -> HeaderValue {
        match self {
            GitCredential::Basic { username, password } => basic(username, password.expose()),
            GitCredential::Bearer { token } => bearer(token.expose()),
        }
    }
    pub fn secret(&self) -> &SecretString {
        match self {
            GitCredential::Basic { password, .. } => password,
            GitCredential::Bearer { token } => token,
        }
    }
    pub fn username(&self) -> Option<&str> {
        match self {
            GitCredential::Basic { username, .. } => Some(username),
            GitCredential::Bearer { .. } => None,
        }
    }
}

pub fn basic(user: &str, password: &str) -> HeaderValue {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    sensitive(&format!("Basic {encoded}"))
}

pub fn bearer(token: &str) -> HeaderValue {
    sensitive(&format!("Bearer {token}"))
}

fn sensitive(s: &str) -> HeaderValue {
    // CredentialsResolved rejects control characters, so the value is a valid header; if it were
    // not, an empty header makes Bitbucket answer 401 rather than bbconn panicking.
    let mut v = HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""));
    v.set_sensitive(true);
    v
}

impl Credential {
    /// The Authorization header for API calls, where the credential is used directly.
    pub fn authorization(&self) -> Option<HeaderValue> {
        match self {
            Credential::AccessToken { token, .. } => Some(bearer(token.expose())),
            Credential::ApiToken { email, token } => Some(basic(email.expose(), token.expose())),
            Credential::Basic { username, password } => {
                Some(basic(username.expose(), password.expose()))
            }
            Credential::AppPassword { .. }
            | Credential::OAuthClient { .. }
            | Credential::OAuthAppLink { .. } => None,
        }
    }

    /// Every value that identifies the credential, for the probe-sharing key (hashed there).
    pub fn key_material(&self) -> Vec<&str> {
        match self {
            Credential::AccessToken { token, token_id } => {
                vec!["token", token.expose(), token_id.as_deref().unwrap_or("")]
            }
            Credential::ApiToken { email, token } => vec!["api", email.expose(), token.expose()],
            Credential::Basic { username, password } => {
                vec!["basic", username.expose(), password.expose()]
            }
            Credential::AppPassword { username, password } => {
                vec!["app", username.expose(), password.expose()]
            }
            Credential::OAuthClient {
                client_id,
                client_secret,
            } => vec!["oauth", client_id.expose(), client_secret.expose()],
            Credential::OAuthAppLink {
                client_id,
                client_secret,
                redirect_url,
            } => {
                vec![
                    "link",
                    client_id.expose(),
                    client_secret.expose(),
                    redirect_url.expose(),
                ]
            }
        }
    }

    /// Every secret value, for tests and for scrubbing error text that came from elsewhere.
    pub fn secret_values(&self) -> Vec<&str> {
        match self {
            Credential::AccessToken { token, .. } => vec![token.expose()],
            Credential::ApiToken { token, .. } => vec![token.expose()],
            Credential::Basic { password, .. } | Credential::AppPassword { password, .. } => {
                vec![password.expose()]
            }
            Credential::OAuthClient { client_secret, .. }
            | Credential::OAuthAppLink { client_secret, .. } => {
                vec![client_secret.expose()]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let c = Credential::AccessToken {
            token: SecretString::new("s3cr3t-value".into()),
            token_id: None,
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cr3t-value"), "{shown}");
        assert!(c.authorization().unwrap().is_sensitive());
    }
}
