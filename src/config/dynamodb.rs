//! A `type: dynamodb` backend's settings: the file's shape
//! ([`RawDynamoBackend`], keys exactly as in docs/dynamodb.md), the defaults,
//! and validation into a [`DynamoConfig`] the DynamoDB store opens.

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub const TABLE: &str = "sealcache";
pub const CREATE_TABLE: bool = true;
pub const BILLING_MODE: &str = "on_demand";
pub const CONSISTENT_READS: bool = true;
/// One attempt of one DynamoDB request; the SDK retries within `max_attempts`.
pub const REQUEST_TIMEOUT_MS: u64 = 2_000;
pub const MAX_ATTEMPTS: u32 = 5;

/// Bounds that catch a misplaced digit rather than limit real deployments.
const MAX_REQUEST_TIMEOUT_MS: u64 = 60_000;
const MAX_MAX_ATTEMPTS: u32 = 20;
/// DynamoDB's own limits on provisioned capacity per table (default quota).
const MAX_CAPACITY: u64 = 40_000;

/// The settings of one `type: dynamodb` backend, as written in the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawDynamoBackend {
    pub table: String,
    /// `null`: the region of the standard AWS chain (`AWS_REGION`, profile).
    pub region: Option<String>,
    /// `null`: the region's public endpoint. `http://` only to loopback (DynamoDB Local).
    pub endpoint_url: Option<String>,
    pub create_table: bool,
    /// `on_demand` or `provisioned`.
    pub billing_mode: String,
    pub read_capacity: Option<u64>,
    pub write_capacity: Option<u64>,
    pub kms_key_id: Option<String>,
    pub consistent_reads: bool,
    pub request_timeout_ms: u64,
    pub max_attempts: u32,
}

impl Default for RawDynamoBackend {
    fn default() -> Self {
        RawDynamoBackend {
            table: TABLE.into(),
            region: None,
            endpoint_url: None,
            create_table: CREATE_TABLE,
            billing_mode: BILLING_MODE.into(),
            read_capacity: None,
            write_capacity: None,
            kms_key_id: None,
            consistent_reads: CONSISTENT_READS,
            request_timeout_ms: REQUEST_TIMEOUT_MS,
            max_attempts: MAX_ATTEMPTS,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BillingMode {
    OnDemand,
    Provisioned {
        read_capacity: u64,
        write_capacity: u64,
    },
}

/// A validated DynamoDB backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoConfig {
    /// The backend's name in `backends:`, for errors and logs.
    pub name: String,
    pub table: String,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub create_table: bool,
    pub billing_mode: BillingMode,
    pub kms_key_id: Option<String>,
    pub consistent_reads: bool,
    pub request_timeout: Duration,
    pub max_attempts: u32,
}

impl DynamoConfig {
    /// The defaults with `table` and `endpoint_url` set (tests, DynamoDB Local).
    pub fn local(name: &str, table: &str, endpoint_url: &str) -> DynamoConfig {
        let raw = RawDynamoBackend {
            table: table.into(),
            region: Some("us-east-1".into()),
            endpoint_url: Some(endpoint_url.into()),
            ..RawDynamoBackend::default()
        };
        validate(name, &raw).expect("valid DynamoDB Local settings")
    }
}

/// Checks every setting of backend `name`; all problems at once, each saying
/// what is wrong and how to fix it.
pub fn validate(name: &str, raw: &RawDynamoBackend) -> Result<DynamoConfig, Vec<String>> {
    let key = |k: &str| format!("backends.{name}.{k}");
    let mut problems = Vec::new();

    if let Err(why) = table_name(&raw.table) {
        problems.push(format!(
            "{} ({:?}) is not a valid DynamoDB table name: {why}. Fix: use 3 to 255 letters, digits, '_', '-' or '.'",
            key("table"),
            raw.table
        ));
    }
    let region = raw.region.clone().filter(|r| !r.is_empty());
    if let Some(region) = &region
        && !region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        problems.push(format!(
            "{} ({region:?}) is not an AWS region name. Fix: use a region such as us-east-1, or null for the AWS_REGION of the environment",
            key("region")
        ));
    }
    let endpoint_url = raw.endpoint_url.clone().filter(|u| !u.is_empty());
    if let Some(url) = &endpoint_url
        && let Err(why) = endpoint(url)
    {
        problems.push(format!(
            "{} ({url:?}) {why}. Fix: use https://… for a DynamoDB endpoint, http://127.0.0.1:PORT for DynamoDB Local, or null for the region's endpoint",
            key("endpoint_url")
        ));
    }
    let billing_mode = match raw.billing_mode.as_str() {
        "on_demand" => {
            for (k, v) in [
                ("read_capacity", raw.read_capacity),
                ("write_capacity", raw.write_capacity),
            ] {
                if v.is_some() {
                    problems.push(format!(
                        "{} is set but {} is on_demand, which has no provisioned capacity. Fix: remove it, or set billing_mode: provisioned",
                        key(k),
                        key("billing_mode")
                    ));
                }
            }
            Some(BillingMode::OnDemand)
        }
        "provisioned" => {
            let mut capacity = |k: &str, v: Option<u64>| match v {
                Some(n) if (1..=MAX_CAPACITY).contains(&n) => Some(n),
                Some(n) => {
                    problems.push(format!(
                        "{} ({n}) is out of range. Fix: use 1 to {MAX_CAPACITY} capacity units",
                        key(k)
                    ));
                    None
                }
                None => {
                    problems.push(format!(
                        "{} is missing: billing_mode provisioned needs both read_capacity and write_capacity. Fix: set it (capacity units per second), or use billing_mode: on_demand",
                        key(k)
                    ));
                    None
                }
            };
            let read = capacity("read_capacity", raw.read_capacity);
            let write = capacity("write_capacity", raw.write_capacity);
            Some(BillingMode::Provisioned {
                read_capacity: read.unwrap_or(1),
                write_capacity: write.unwrap_or(1),
            })
        }
        other => {
            problems.push(format!(
                "{} ({other:?}) is not a billing mode. Fix: use on_demand or provisioned",
                key("billing_mode")
            ));
            None
        }
    };
    let kms_key_id = raw.kms_key_id.clone().filter(|k| !k.is_empty());
    if !(1..=MAX_REQUEST_TIMEOUT_MS).contains(&raw.request_timeout_ms) {
        problems.push(format!(
            "{} ({}) is out of range. Fix: use 1 to {MAX_REQUEST_TIMEOUT_MS} milliseconds",
            key("request_timeout_ms"),
            raw.request_timeout_ms
        ));
    }
    if !(1..=MAX_MAX_ATTEMPTS).contains(&raw.max_attempts) {
        problems.push(format!(
            "{} ({}) is out of range. Fix: use 1 (no retries) to {MAX_MAX_ATTEMPTS}",
            key("max_attempts"),
            raw.max_attempts
        ));
    }
    match billing_mode {
        Some(billing_mode) if problems.is_empty() => Ok(DynamoConfig {
            name: name.into(),
            table: raw.table.clone(),
            region,
            endpoint_url,
            create_table: raw.create_table,
            billing_mode,
            kms_key_id,
            consistent_reads: raw.consistent_reads,
            request_timeout: Duration::from_millis(raw.request_timeout_ms),
            max_attempts: raw.max_attempts,
        }),
        _ => Err(problems),
    }
}

/// DynamoDB's table naming rule.
fn table_name(name: &str) -> Result<(), &'static str> {
    if !(3..=255).contains(&name.len()) {
        return Err("it must be 3 to 255 characters long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return Err("it may contain only letters, digits, '_', '-' and '.'");
    }
    Ok(())
}

/// An endpoint URL: https anywhere, plain http only to a loopback host
/// (values are sealed, but request signatures and key names would travel in
/// the clear).
fn endpoint(text: &str) -> Result<(), &'static str> {
    let url = url::Url::parse(text).map_err(|_| "is not a URL")?;
    let Some(host) = url.host_str() else {
        return Err("has no host");
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" => {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = host == "localhost"
                || host
                    .parse::<IpAddr>()
                    .is_ok_and(|ip: IpAddr| ip.is_loopback());
            if loopback {
                Ok(())
            } else {
                Err(
                    "is plain http to a host that is not loopback, so requests and key names would cross the network unencrypted",
                )
            }
        }
        _ => Err("must start with https:// (or http:// to a loopback address)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> RawDynamoBackend {
        serde_saphyr::from_str(text).expect("valid yaml")
    }

    fn problems(raw: &RawDynamoBackend) -> String {
        validate("shared", raw).unwrap_err().join("\n")
    }

    #[test]
    fn the_issue_example_parses_with_these_exact_keys() {
        let raw = yaml(
            "table: sealcache\nregion: us-east-1\nendpoint_url: null\ncreate_table: true\n\
             billing_mode: on_demand\nkms_key_id: null\nconsistent_reads: true\n\
             request_timeout_ms: 2000\nmax_attempts: 5\n",
        );
        assert_eq!(
            raw,
            RawDynamoBackend {
                region: Some("us-east-1".into()),
                ..RawDynamoBackend::default()
            }
        );
        let config = validate("shared", &raw).unwrap();
        assert_eq!(config.billing_mode, BillingMode::OnDemand);
        assert_eq!(config.request_timeout, Duration::from_secs(2));
        assert_eq!(config.name, "shared");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = serde_saphyr::from_str::<RawDynamoBackend>("table: t1x\nread_units: 5\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("read_units"), "{err}");
    }

    #[test]
    fn provisioned_needs_both_capacities_and_on_demand_none() {
        let raw = yaml("billing_mode: provisioned\nread_capacity: 5\n");
        let p = problems(&raw);
        assert!(
            p.contains("backends.shared.write_capacity is missing"),
            "{p}"
        );
        let ok = validate(
            "shared",
            &yaml("billing_mode: provisioned\nread_capacity: 5\nwrite_capacity: 7\n"),
        )
        .unwrap();
        assert_eq!(
            ok.billing_mode,
            BillingMode::Provisioned {
                read_capacity: 5,
                write_capacity: 7
            }
        );
        let p = problems(&yaml("read_capacity: 5\n"));
        assert!(
            p.contains("on_demand, which has no provisioned capacity"),
            "{p}"
        );
        let p = problems(&yaml("billing_mode: free\n"));
        assert!(p.contains("is not a billing mode"), "{p}");
    }

    #[test]
    fn endpoints_are_https_or_loopback_http() {
        for good in [
            "https://dynamodb.eu-west-1.amazonaws.com",
            "http://127.0.0.1:8000",
            "http://localhost:8000",
            "http://[::1]:8000",
        ] {
            let raw = RawDynamoBackend {
                endpoint_url: Some(good.into()),
                ..RawDynamoBackend::default()
            };
            assert!(validate("d", &raw).is_ok(), "{good}");
        }
        for bad in ["http://10.0.0.5:8000", "ftp://x", "not a url"] {
            let raw = RawDynamoBackend {
                endpoint_url: Some(bad.into()),
                ..RawDynamoBackend::default()
            };
            let p = problems(&raw);
            assert!(p.contains("backends.shared.endpoint_url"), "{p}");
            assert!(p.contains("Fix:"), "{p}");
        }
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let raw = RawDynamoBackend {
            table: "x".into(),
            region: Some("US East".into()),
            request_timeout_ms: 0,
            max_attempts: 0,
            ..RawDynamoBackend::default()
        };
        let all = validate("shared", &raw).unwrap_err();
        assert_eq!(all.len(), 4, "{all:#?}");
        assert!(all.iter().all(|p| p.contains("Fix:")), "{all:#?}");
    }
}
