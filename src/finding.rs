//! A cause with the message that explains one instance of it: what every layer that can meet a
//! cause (the checks, the Bitbucket clients, the engine) hands upward. It sits just above the
//! catalogue so that nothing below the checks needs to import them.

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
