//! Why the DynamoDB store failed. Every message names the backend and the
//! table, says what went wrong and, where the operator can act, how to fix
//! it; it reads well after `-ERR sealcache: `. Values never appear in it.

use std::fmt;
use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

/// Which backend and table an error is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub backend: String,
    pub table: String,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "dynamodb backend '{}' (table '{}')",
            self.backend, self.table
        )
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum DynamoError {
    /// A request failed after the SDK's retries (throttling, 5xx, timeouts,
    /// connection errors), or was refused.
    #[error("{at}: {operation} failed: {reason}")]
    Request {
        at: Target,
        operation: &'static str,
        reason: String,
    },

    #[error(
        "{at}: the table does not exist and create_table is false. Fix: create it with the schema in docs/dynamodb.md, or set create_table: true"
    )]
    TableMissing { at: Target },

    #[error(
        "{at}: the existing table does not fit sealcache's schema: {}. Fix: point this backend at a new table name (sealcache creates it), or recreate the table as docs/dynamodb.md shows",
        .differences.join("; ")
    )]
    Schema {
        at: Target,
        differences: Vec<String>,
    },

    #[error(
        "{at}: the table is not ACTIVE after {waited:?} (status {status}). Fix: check the table in the AWS console, then start again"
    )]
    NotActive {
        at: Target,
        status: String,
        waited: Duration,
    },

    #[error(
        "{at}: gave up after {attempts} conflicting concurrent writes to the same keys in {elapsed:?}; retry the command"
    )]
    Contention {
        at: Target,
        attempts: u32,
        elapsed: Duration,
    },

    /// An item sealcache did not write (or a newer version's) is in the way.
    #[error(
        "{at}: item {item} is not in sealcache's format ({why}). Fix: keep other data out of this table"
    )]
    Corrupt {
        at: Target,
        item: String,
        why: String,
    },

    #[error("{at}: {message}")]
    Setup { at: Target, message: String },

    /// Redis's own answer (WRONGTYPE…) or the store's refusal of something
    /// it cannot hold (`ERR sealcache: …`): send it to the client as it is.
    #[error("{reply}")]
    Reply { reply: String },
}

impl DynamoError {
    /// A failed SDK call, with the most useful reason the error carries.
    pub(crate) fn request<E, R>(at: &Target, operation: &'static str, err: &SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: fmt::Debug,
    {
        DynamoError::Request {
            at: at.clone(),
            operation,
            reason: describe(err),
        }
    }

    /// Whether the table itself is gone (deleted, or an emulator restarted empty).
    pub fn is_table_missing(&self) -> bool {
        matches!(self, DynamoError::Request { reason, .. } if reason.starts_with(TABLE_GONE))
            || matches!(self, DynamoError::TableMissing { .. })
    }
}

const TABLE_GONE: &str = "the table does not exist";

/// One sentence for an SDK error: the service's code and message, or the
/// transport problem (timeout, connection refused) behind a dispatch failure.
pub(crate) fn describe<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug,
{
    match err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            let code = e.code().unwrap_or("unknown error");
            let message = e.message().unwrap_or_default();
            match code {
                "ResourceNotFoundException" => format!(
                    "{TABLE_GONE} ({message}). Fix: create the table again (with create_table: true sealcache does)"
                ),
                "ProvisionedThroughputExceededException"
                | "ThrottlingException"
                | "RequestLimitExceeded" => format!(
                    "throttled by DynamoDB after every retry ({code}: {message}). Fix: raise the table's capacity or use billing_mode: on_demand, or raise max_attempts"
                ),
                "AccessDeniedException" | "UnrecognizedClientException" => format!(
                    "access denied ({code}: {message}). Fix: give sealcache's AWS identity the permissions in docs/dynamodb.md"
                ),
                _ if message.is_empty() => code.to_string(),
                _ => format!("{code}: {message}"),
            }
        }
        SdkError::TimeoutError(_) => {
            "no answer within request_timeout_ms on any attempt (is DynamoDB reachable?)".into()
        }
        SdkError::DispatchFailure(failure) => {
            let mut reason = String::from("cannot reach DynamoDB");
            if let Some(source) = std::error::Error::source(err) {
                reason.push_str(&format!(": {}", chain(source)));
            } else if failure.is_timeout() {
                reason.push_str(": timed out");
            }
            reason
        }
        SdkError::ConstructionFailure(_) => {
            format!("the request could not be built: {}", chain(err))
        }
        SdkError::ResponseError(_) => format!("unreadable response from DynamoDB: {}", chain(err)),
        _ => chain(err),
    }
}

/// An error and its sources, innermost last, deduplicated.
fn chain(err: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_backend_and_table() {
        let at = Target {
            backend: "shared".into(),
            table: "cache".into(),
        };
        let e = DynamoError::TableMissing { at: at.clone() };
        let text = e.to_string();
        assert!(
            text.starts_with("dynamodb backend 'shared' (table 'cache'): "),
            "{text}"
        );
        assert!(text.contains("create_table: true"), "{text}");
        let e = DynamoError::Schema {
            at,
            differences: vec!["a".into(), "b".into()],
        };
        assert!(e.to_string().contains("schema: a; b. Fix:"), "{e}");
    }
}
