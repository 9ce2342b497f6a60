//! What a Bitbucket request's failure means, whichever check sent it: the catalogue's "any check"
//! causes (`src/catalogue.rs`: NotBitbucketApi, UnexpectedRedirect, RateLimited, ServerError,
//! ConnectionTimedOut, UnexpectedResponse). The clients in `bitbucket/` say what happened
//! ([`Error`]); this decides the cause.

use super::Finding;
use crate::bitbucket::Error;
use crate::catalogue::Cause;

impl From<Error> for Finding {
    fn from(e: Error) -> Finding {
        let cause = match &e {
            Error::LoginPage(_) => Cause::NotBitbucketApi,
            Error::Redirect(_) => Cause::UnexpectedRedirect,
            Error::RateLimited { .. } => Cause::RateLimited,
            Error::ServerFailed(_) => Cause::ServerError,
            Error::TimedOut(_) => Cause::ConnectionTimedOut,
            Error::Unexpected(_) => Cause::UnexpectedResponse,
        };
        let mut f = Finding::new(cause, e.to_string());
        if let Error::RateLimited { retry_after, .. } = e {
            f.retry_after = Some(retry_after);
        }
        f
    }
}
