//! A cause with the message that explains one instance of it: what the checks decide and the
//! engine records. The Bitbucket clients do not make these: they return what Bitbucket said
//! (`bitbucket::Error` and their answer types), and `checks/` turns that into causes.

use crate::catalogue::Cause;
use std::time::Duration;

/// A cause with the message that explains this instance of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub cause: Cause,
    pub message: String,
    /// From a 429's Retry-After: when to try again.
    pub retry_after: Option<Duration>,
}

impl Finding {
    pub fn new(cause: Cause, message: impl Into<String>) -> Finding {
        Finding {
            cause,
            message: message.into(),
            retry_after: None,
        }
    }
}
