//! The SDK client: the standard AWS credential chain, HTTPS on rustls with
//! ring (the only rustls provider in sealcache), and the configured retries
//! (the SDK's exponential backoff with jitter) and timeouts. Also counts the
//! requests the store makes, per operation, for benchmarks and tests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, Region};
use aws_sdk_dynamodb::Client;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

use crate::config::dynamodb::DynamoConfig;

/// First retry after about this long (with full jitter), doubling per attempt.
const INITIAL_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Opening a TCP/TLS connection is one part of an attempt; it gets at most this.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The loader for the standard chain (environment, profile, web identity,
/// container and instance credentials); tests pass one with static credentials.
pub fn default_loader() -> ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
}

pub(crate) async fn build(config: &DynamoConfig, loader: ConfigLoader) -> Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut loader = loader.http_client(http);
    if let Some(region) = &config.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &config.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let shared = loader.load().await;
    let retry = RetryConfig::standard()
        .with_max_attempts(config.max_attempts)
        .with_initial_backoff(INITIAL_BACKOFF)
        .with_max_backoff(MAX_BACKOFF);
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(config.request_timeout.min(MAX_CONNECT_TIMEOUT))
        .operation_attempt_timeout(config.request_timeout)
        .operation_timeout(operation_budget(config))
        .build();
    let conf = aws_sdk_dynamodb::config::Builder::from(&shared)
        .retry_config(retry)
        .timeout_config(timeouts)
        .build();
    Client::from_conf(conf)
}

/// Every attempt's timeout plus the longest backoffs between them.
pub(crate) fn operation_budget(config: &DynamoConfig) -> Duration {
    let attempts = config.max_attempts.max(1);
    let mut budget = config.request_timeout * attempts;
    let mut backoff = INITIAL_BACKOFF;
    for _ in 1..attempts {
        budget += backoff;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    budget
}

/// DynamoDB requests made, per operation.
#[derive(Debug, Default)]
pub struct RequestCounts {
    counts: [AtomicU64; Op::ALL.len()],
}

/// The DynamoDB operations the store uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    GetItem,
    PutItem,
    UpdateItem,
    DeleteItem,
    Query,
    Scan,
    BatchGetItem,
    BatchWriteItem,
    TransactWriteItems,
    DescribeTable,
    CreateTable,
    DescribeTimeToLive,
    UpdateTimeToLive,
}

impl Op {
    pub const ALL: [Op; 13] = [
        Op::GetItem,
        Op::PutItem,
        Op::UpdateItem,
        Op::DeleteItem,
        Op::Query,
        Op::Scan,
        Op::BatchGetItem,
        Op::BatchWriteItem,
        Op::TransactWriteItems,
        Op::DescribeTable,
        Op::CreateTable,
        Op::DescribeTimeToLive,
        Op::UpdateTimeToLive,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Op::GetItem => "GetItem",
            Op::PutItem => "PutItem",
            Op::UpdateItem => "UpdateItem",
            Op::DeleteItem => "DeleteItem",
            Op::Query => "Query",
            Op::Scan => "Scan",
            Op::BatchGetItem => "BatchGetItem",
            Op::BatchWriteItem => "BatchWriteItem",
            Op::TransactWriteItems => "TransactWriteItems",
            Op::DescribeTable => "DescribeTable",
            Op::CreateTable => "CreateTable",
            Op::DescribeTimeToLive => "DescribeTimeToLive",
            Op::UpdateTimeToLive => "UpdateTimeToLive",
        }
    }
}

impl Op {
    /// The INFO field counting this operation's requests.
    pub fn info_field(self) -> &'static str {
        match self {
            Op::GetItem => "requests_get_item",
            Op::PutItem => "requests_put_item",
            Op::UpdateItem => "requests_update_item",
            Op::DeleteItem => "requests_delete_item",
            Op::Query => "requests_query",
            Op::Scan => "requests_scan",
            Op::BatchGetItem => "requests_batch_get_item",
            Op::BatchWriteItem => "requests_batch_write_item",
            Op::TransactWriteItems => "requests_transact_write_items",
            Op::DescribeTable => "requests_describe_table",
            Op::CreateTable => "requests_create_table",
            Op::DescribeTimeToLive => "requests_describe_time_to_live",
            Op::UpdateTimeToLive => "requests_update_time_to_live",
        }
    }
}

impl RequestCounts {
    pub(crate) fn count(&self, op: Op) {
        self.counts[op as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// `(operation, requests)` for every operation used so far.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        Op::ALL
            .iter()
            .map(|op| (op.name(), self.counts[*op as usize].load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    pub fn get(&self, op: Op) -> u64 {
        self.counts[op as usize].load(Ordering::Relaxed)
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::dynamodb::fake::{error, fake_dynamodb, ok};

    async fn client_for(url: &str, max_attempts: u32) -> Client {
        let mut config = DynamoConfig::local("d", "table", url);
        config.max_attempts = max_attempts;
        let credentials = aws_sdk_dynamodb::config::Credentials::new("a", "b", None, None, "test");
        build(&config, default_loader().credentials_provider(credentials)).await
    }

    #[tokio::test]
    async fn throttling_and_server_errors_are_retried_up_to_max_attempts() {
        let throttled = || error(400, "ThrottlingException", "slow down");
        let broken = || error(500, "InternalServerError", "boom");
        let (url, server) = fake_dynamodb(vec![throttled(), broken(), ok("{}")]).await;
        let client = client_for(&url, 3).await;
        let out = client.get_item().table_name("table").send().await;
        assert!(out.is_ok(), "{out:?}");
        assert_eq!(server.await.unwrap().len(), 3);

        let (url, server) = fake_dynamodb(vec![broken(), throttled()]).await;
        let client = client_for(&url, 2).await;
        let err = client
            .get_item()
            .table_name("table")
            .send()
            .await
            .unwrap_err();
        assert_eq!(server.await.unwrap().len(), 2, "no third attempt");
        let text = crate::backend::dynamodb::error::describe(&err);
        assert!(
            text.starts_with("throttled by DynamoDB after every retry"),
            "{text}"
        );
    }

    #[test]
    fn the_budget_covers_every_attempt_and_backoff() {
        let config = DynamoConfig::local("d", "table", "http://127.0.0.1:1");
        // 5 attempts of 2 s, then 50 + 100 + 200 + 400 ms of backoff.
        assert_eq!(operation_budget(&config), Duration::from_millis(10_750));
    }
}
