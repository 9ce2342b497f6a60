//! Step 4, TLSVerified: the trust store from the CA bundle, the handshake, and the certificate
//! it showed. Decided by `checks/tls.rs`.

use super::connect::Connected;
use super::{Leg, Run, Step, settle};
use crate::catalogue::Check;
use crate::checks::{self, CheckResult};
use crate::transport::tls::{self as tlsx, HandshakeError, LeafInfo};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A verified TLS connection, what its Host header is, and the leaf certificate.
pub(super) struct Secured {
    pub stream: TlsStream<TcpStream>,
    pub authority: String,
    pub leaf: Option<LeafInfo>,
}

pub(super) async fn verify(run: &mut Run<'_>, leg: &Leg<'_>, c: Connected) -> Step<Secured> {
    let (env, spec, o) = (run.env, &run.input.spec, leg.origin);
    let failed = |f| CheckResult::failed(Check::TlsVerified, f);
    let tls_spec = spec.tls.clone().unwrap_or_default();
    let public_roots = tls_spec.use_public_roots.unwrap_or(true);
    let trust = run
        .input
        .ca
        .clone()
        .and_then(|b| env.trust.get(&b, public_roots))
        .map_err(failed)?;
    let skip_verify = tls_spec.insecure_skip_verify.unwrap_or(false);
    let timeout = env.net.connect_timeout;
    let hs = tlsx::handshake(c.stream, &o.host, &trust, skip_verify, timeout).await;
    let rejection = match &hs.outcome {
        Err(HandshakeError::Rejected(r)) => Some(r.clone()),
        _ => hs.overlooked.clone(),
    };
    let (result, leaf) = checks::tls::check(checks::tls::Inputs {
        host: &o.host,
        chain: &hs.chain,
        rejection: rejection.as_ref(),
        pin: tls_spec.pinned_sha256.as_deref(),
        skip_verify,
        now: (env.clock)(),
        warn_within: spec.expiry_warning(),
    });
    // The first origin's certificate is the one reported (the API's: the others are opened
    // only after it passed).
    if run.found.certificate.is_none() {
        run.found.certificate = leaf.clone();
    }
    let stream = match hs.outcome {
        Err(e) => {
            return Err(match checks::tls::handshake_failure(&o.host, &e) {
                Some(f) => failed(f),
                None => result,
            });
        }
        Ok(s) => s,
    };
    let ((), decided) = settle(result)?;
    let authority = if c.port == 443 {
        o.host.clone()
    } else {
        format!("{}:{}", o.host, c.port)
    };
    Ok((
        Secured {
            stream,
            authority,
            leaf,
        },
        decided,
    ))
}
