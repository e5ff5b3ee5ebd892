//! The table's lifecycle at start: create it when missing (if allowed), wait
//! until it is ACTIVE, check an existing table's schema and say what differs,
//! and enable TTL on the expiry attribute unless it already is (DynamoDB
//! refuses to enable it twice).

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::create_table::CreateTableError;
use aws_sdk_dynamodb::operation::describe_table::DescribeTableError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode as SdkBillingMode, KeySchemaElement, KeyType,
    LocalSecondaryIndex, Projection, ProjectionType, ProvisionedThroughput, ScalarAttributeType,
    SseSpecification, SseType, TableDescription, TableStatus, TimeToLiveSpecification,
    TimeToLiveStatus,
};
use futures_util::FutureExt;

use super::client::{Op, RequestCounts};
use super::error::{DynamoError, Target};
use super::item::{PK, SK, TTL, ZO, ZORDER_INDEX};
use crate::config::dynamodb::{BillingMode, DynamoConfig};

/// How long start-up waits for a new table (or one being updated) to become ACTIVE.
const ACTIVE_DEADLINE: Duration = Duration::from_secs(300);
const POLL_FIRST: Duration = Duration::from_millis(100);
const POLL_MAX: Duration = Duration::from_secs(2);

pub(crate) struct Lifecycle<'a> {
    pub client: &'a Client,
    pub config: &'a DynamoConfig,
    pub at: &'a Target,
    pub counts: &'a RequestCounts,
}

impl Lifecycle<'_> {
    /// Returns whether it created the table.
    pub async fn ensure(&self) -> Result<bool, DynamoError> {
        let created = match self.describe().await? {
            Some(table) => {
                self.check(&table)?;
                self.warn_about_settings(&table);
                if table.table_status() != Some(&TableStatus::Active) {
                    self.wait_active().await?;
                }
                false
            }
            None if !self.config.create_table => {
                return Err(DynamoError::TableMissing {
                    at: self.at.clone(),
                });
            }
            None => {
                self.create().await?;
                self.wait_active().await?;
                true
            }
        };
        self.ensure_ttl().await?;
        Ok(created)
    }

    /// Reads the table's description and checks its schema, changing
    /// nothing (`sealcache health`): a missing table is an error even when
    /// `create_table` would create it at start.
    pub async fn inspect(&self) -> Result<(), DynamoError> {
        match self.describe().await? {
            Some(table) => self.check(&table),
            None => Err(DynamoError::TableMissing {
                at: self.at.clone(),
            }),
        }
    }

    /// Refuses a table whose schema does not fit, saying what differs.
    fn check(&self, table: &TableDescription) -> Result<(), DynamoError> {
        let differences = differences(table);
        if differences.is_empty() {
            return Ok(());
        }
        Err(DynamoError::Schema {
            at: self.at.clone(),
            differences,
        })
    }

    fn setup(&self, message: impl Into<String>) -> DynamoError {
        DynamoError::Setup {
            at: self.at.clone(),
            message: message.into(),
        }
    }

    async fn describe(&self) -> Result<Option<TableDescription>, DynamoError> {
        self.counts.count(Op::DescribeTable);
        match self
            .client
            .describe_table()
            .table_name(&self.config.table)
            .send()
            .boxed()
            .await
        {
            Ok(out) => Ok(out.table().cloned()),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(DescribeTableError::ResourceNotFoundException(_))
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(DynamoError::request(self.at, "DescribeTable", &e)),
        }
    }

    async fn create(&self) -> Result<(), DynamoError> {
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::B)
                .build()
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
        };
        let built = (|| {
            Ok::<_, aws_sdk_dynamodb::error::BuildError>((
                vec![attr(PK)?, attr(SK)?, attr(ZO)?],
                vec![key(PK, KeyType::Hash)?, key(SK, KeyType::Range)?],
                LocalSecondaryIndex::builder()
                    .index_name(ZORDER_INDEX)
                    .key_schema(key(PK, KeyType::Hash)?)
                    .key_schema(key(ZO, KeyType::Range)?)
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::KeysOnly)
                            .build(),
                    )
                    .build()?,
            ))
        })();
        let (attributes, keys, zorder) =
            built.map_err(|e| self.setup(format!("cannot build CreateTable: {e}")))?;
        let mut request = self
            .client
            .create_table()
            .table_name(&self.config.table)
            .set_attribute_definitions(Some(attributes))
            .set_key_schema(Some(keys))
            .local_secondary_indexes(zorder);
        request = match self.config.billing_mode {
            BillingMode::OnDemand => request.billing_mode(SdkBillingMode::PayPerRequest),
            BillingMode::Provisioned {
                read_capacity,
                write_capacity,
            } => request
                .billing_mode(SdkBillingMode::Provisioned)
                .provisioned_throughput(
                    ProvisionedThroughput::builder()
                        .read_capacity_units(read_capacity as i64)
                        .write_capacity_units(write_capacity as i64)
                        .build()
                        .map_err(|e| self.setup(format!("cannot build CreateTable: {e}")))?,
                ),
        };
        if let Some(kms) = &self.config.kms_key_id {
            request = request.sse_specification(
                SseSpecification::builder()
                    .enabled(true)
                    .sse_type(SseType::Kms)
                    .kms_master_key_id(kms)
                    .build(),
            );
        }
        self.counts.count(Op::CreateTable);
        match request.send().boxed().await {
            Ok(_) => {
                tracing::info!(backend = %self.at.backend, table = %self.config.table, "created the DynamoDB table");
                Ok(())
            }
            // Another sidecar created it first: fine, wait for it like ours.
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(CreateTableError::ResourceInUseException(_))
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(DynamoError::request(self.at, "CreateTable", &e)),
        }
    }

    async fn wait_active(&self) -> Result<(), DynamoError> {
        let started = Instant::now();
        let mut delay = POLL_FIRST;
        loop {
            let status = match self.describe().await? {
                Some(table) => {
                    self.check(&table)?;
                    table.table_status().cloned()
                }
                None => None,
            };
            if status == Some(TableStatus::Active) {
                return Ok(());
            }
            if started.elapsed() >= ACTIVE_DEADLINE {
                return Err(DynamoError::NotActive {
                    at: self.at.clone(),
                    status: status.map_or_else(|| "missing".into(), |s| s.as_str().to_owned()),
                    waited: started.elapsed(),
                });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(POLL_MAX);
        }
    }

    /// Enables TTL on [`TTL`] unless it already is; refuses a table whose TTL
    /// is on another attribute (a table has only one).
    async fn ensure_ttl(&self) -> Result<(), DynamoError> {
        self.counts.count(Op::DescribeTimeToLive);
        let described = self
            .client
            .describe_time_to_live()
            .table_name(&self.config.table)
            .send()
            .boxed()
            .await
            .map_err(|e| DynamoError::request(self.at, "DescribeTimeToLive", &e))?;
        let ttl = described.time_to_live_description();
        let status = ttl.and_then(|t| t.time_to_live_status());
        let attribute = ttl.and_then(|t| t.attribute_name());
        match status {
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling) => {
                if attribute == Some(TTL) {
                    return Ok(());
                }
                Err(DynamoError::Schema {
                    at: self.at.clone(),
                    differences: vec![format!(
                        "TTL is enabled on attribute '{}', but sealcache keeps expiry in '{TTL}' (a table has one TTL attribute); \
                         disable it (aws dynamodb update-time-to-live --table-name {} --time-to-live-specification Enabled=false,AttributeName={}) or use another table",
                        attribute.unwrap_or("?"),
                        self.config.table,
                        attribute.unwrap_or("?"),
                    )],
                })
            }
            Some(TimeToLiveStatus::Disabling) => Err(self.setup(
                "TTL is being disabled on the table, and DynamoDB refuses to enable it until that finishes (up to an hour). Fix: start again later",
            )),
            _ => {
                let spec = TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(TTL)
                    .build()
                    .map_err(|e| self.setup(format!("cannot build UpdateTimeToLive: {e}")))?;
                self.counts.count(Op::UpdateTimeToLive);
                self.client
                    .update_time_to_live()
                    .table_name(&self.config.table)
                    .time_to_live_specification(spec)
                    .send()
                    .boxed()
                    .await
                    .map_err(|e| DynamoError::request(self.at, "UpdateTimeToLive", &e))?;
                tracing::info!(backend = %self.at.backend, table = %self.config.table, attribute = TTL, "enabled TTL on the DynamoDB table");
                Ok(())
            }
        }
    }

    /// Billing and encryption of an existing table are the owner's choice:
    /// sealcache does not change them, but says when they differ.
    fn warn_about_settings(&self, table: &TableDescription) {
        let on_demand = table.billing_mode_summary().and_then(|b| b.billing_mode())
            == Some(&SdkBillingMode::PayPerRequest);
        let wanted = matches!(self.config.billing_mode, BillingMode::OnDemand);
        if on_demand != wanted {
            tracing::warn!(
                backend = %self.at.backend,
                table = %self.config.table,
                "the existing table's billing mode differs from billing_mode in the configuration; sealcache leaves it as it is"
            );
        }
        if let Some(kms) = &self.config.kms_key_id {
            let key = table
                .sse_description()
                .and_then(|s| s.kms_master_key_arn())
                .unwrap_or_default();
            if !key.contains(kms.as_str()) {
                tracing::warn!(
                    backend = %self.at.backend,
                    table = %self.config.table,
                    "the existing table is not encrypted with kms_key_id; sealcache leaves its encryption as it is"
                );
            }
        }
    }
}

/// How an existing table differs from the schema sealcache needs.
pub(crate) fn differences(table: &TableDescription) -> Vec<String> {
    let mut out = Vec::new();
    let key_of = |schema: &[KeySchemaElement], kind: KeyType| {
        schema
            .iter()
            .find(|k| k.key_type() == &kind)
            .map(|k| k.attribute_name().to_owned())
    };
    let type_of = |name: &str| {
        table
            .attribute_definitions()
            .iter()
            .find(|a| a.attribute_name() == name)
            .map(|a| a.attribute_type().as_str().to_owned())
    };
    let schema = table.key_schema();
    for (role, kind, want) in [
        ("partition key", KeyType::Hash, PK),
        ("sort key", KeyType::Range, SK),
    ] {
        match key_of(schema, kind) {
            Some(name) if name == want => match type_of(want).as_deref() {
                Some("B") => {}
                other => out.push(format!(
                    "the {role} '{want}' is of type {} but must be binary (B)",
                    other.unwrap_or("unknown")
                )),
            },
            Some(name) => out.push(format!(
                "the {role} is '{name}' but must be the binary attribute '{want}'"
            )),
            None => out.push(format!(
                "the table has no {role}; it needs the binary attribute '{want}'"
            )),
        }
    }
    let zorder = table
        .local_secondary_indexes()
        .iter()
        .find(|i| i.index_name() == Some(ZORDER_INDEX));
    match zorder {
        None => out.push(format!(
            "the local secondary index '{ZORDER_INDEX}' (sort key '{ZO}', binary; sorted-set score order) is missing"
        )),
        Some(index) => {
            let range = key_of(index.key_schema(), KeyType::Range);
            if range.as_deref() != Some(ZO) || type_of(ZO).as_deref() != Some("B") {
                out.push(format!(
                    "the index '{ZORDER_INDEX}' must have the binary sort key '{ZO}' (it has {})",
                    range.map_or_else(|| "none".into(), |r| format!("'{r}'"))
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::dynamodb::fake::{error, fake_dynamodb, ok};

    const ACTIVE_TABLE: &str = r#"{"Table":{"TableName":"t","TableStatus":"ACTIVE",
        "KeySchema":[{"AttributeName":"pk","KeyType":"HASH"},{"AttributeName":"sk","KeyType":"RANGE"}],
        "AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"B"},{"AttributeName":"sk","AttributeType":"B"},{"AttributeName":"zo","AttributeType":"B"}],
        "LocalSecondaryIndexes":[{"IndexName":"zorder","KeySchema":[{"AttributeName":"pk","KeyType":"HASH"},{"AttributeName":"zo","KeyType":"RANGE"}],"Projection":{"ProjectionType":"KEYS_ONLY"}}]}}"#;

    async fn ensure(url: &str, config: impl FnOnce(&mut DynamoConfig)) -> Result<(), DynamoError> {
        let mut c = DynamoConfig::local("shared", "cache", url);
        config(&mut c);
        let credentials = aws_sdk_dynamodb::config::Credentials::new("a", "b", None, None, "test");
        let client = crate::backend::dynamodb::client::build(
            &c,
            crate::backend::dynamodb::default_loader().credentials_provider(credentials),
        )
        .await;
        let at = Target {
            backend: c.name.clone(),
            table: c.table.clone(),
        };
        let counts = RequestCounts::default();
        Lifecycle {
            client: &client,
            config: &c,
            at: &at,
            counts: &counts,
        }
        .ensure()
        .await
        .map(|_created| ())
    }

    #[tokio::test]
    async fn a_new_table_gets_the_schema_billing_encryption_and_ttl() {
        let (url, server) = fake_dynamodb(vec![
            error(400, "ResourceNotFoundException", "no table"),
            ok("{}"),
            ok(ACTIVE_TABLE),
            ok(r#"{"TimeToLiveDescription":{"TimeToLiveStatus":"DISABLED"}}"#),
            ok("{}"),
        ])
        .await;
        ensure(&url, |c| {
            c.kms_key_id = Some("alias/sealcache".into());
            c.billing_mode = BillingMode::Provisioned {
                read_capacity: 7,
                write_capacity: 3,
            };
        })
        .await
        .unwrap();
        let served = server.await.unwrap();
        let operations: Vec<&str> = served.iter().map(|(op, _)| op.as_str()).collect();
        assert_eq!(
            operations,
            [
                "DescribeTable",
                "CreateTable",
                "DescribeTable",
                "DescribeTimeToLive",
                "UpdateTimeToLive"
            ]
        );
        let create: serde_json::Value = serde_json::from_str(&served[1].1).unwrap();
        assert_eq!(
            create["SSESpecification"],
            serde_json::json!({"Enabled": true, "SSEType": "KMS", "KMSMasterKeyId": "alias/sealcache"})
        );
        assert_eq!(create["BillingMode"], "PROVISIONED");
        assert_eq!(
            create["ProvisionedThroughput"],
            serde_json::json!({"ReadCapacityUnits": 7, "WriteCapacityUnits": 3})
        );
        assert_eq!(create["LocalSecondaryIndexes"][0]["IndexName"], "zorder");
        assert_eq!(
            create["LocalSecondaryIndexes"][0]["Projection"]["ProjectionType"],
            "KEYS_ONLY"
        );
        let ttl: serde_json::Value = serde_json::from_str(&served[4].1).unwrap();
        assert_eq!(
            ttl["TimeToLiveSpecification"],
            serde_json::json!({"Enabled": true, "AttributeName": "ttl"})
        );
    }

    #[tokio::test]
    async fn ttl_already_enabled_is_not_enabled_again() {
        let (url, server) = fake_dynamodb(vec![
            ok(ACTIVE_TABLE),
            ok(r#"{"TimeToLiveDescription":{"TimeToLiveStatus":"ENABLED","AttributeName":"ttl"}}"#),
        ])
        .await;
        ensure(&url, |_| {}).await.unwrap();
        let operations: Vec<String> = server
            .await
            .unwrap()
            .into_iter()
            .map(|(op, _)| op)
            .collect();
        assert_eq!(operations, ["DescribeTable", "DescribeTimeToLive"]);
    }

    #[tokio::test]
    async fn ttl_on_another_attribute_is_refused_with_the_fix() {
        let (url, _server) = fake_dynamodb(vec![
            ok(ACTIVE_TABLE),
            ok(r#"{"TimeToLiveDescription":{"TimeToLiveStatus":"ENABLED","AttributeName":"expires"}}"#),
        ])
        .await;
        let err = ensure(&url, |_| {}).await.unwrap_err().to_string();
        assert!(
            err.contains("TTL is enabled on attribute 'expires'"),
            "{err}"
        );
        assert!(err.contains("update-time-to-live"), "{err}");
    }

    fn key(name: &str, kind: KeyType) -> KeySchemaElement {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .unwrap()
    }

    fn attr(name: &str, kind: ScalarAttributeType) -> AttributeDefinition {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(kind)
            .build()
            .unwrap()
    }

    #[test]
    fn a_foreign_schema_is_described_plainly() {
        let table = TableDescription::builder()
            .key_schema(key("id", KeyType::Hash))
            .attribute_definitions(attr("id", ScalarAttributeType::S))
            .build();
        let diffs = differences(&table);
        assert_eq!(diffs.len(), 3, "{diffs:#?}");
        assert!(diffs[0].contains("partition key is 'id'"), "{diffs:#?}");
        assert!(diffs[1].contains("no sort key"), "{diffs:#?}");
        assert!(diffs[2].contains("'zorder'"), "{diffs:#?}");
    }

    #[test]
    fn the_right_schema_has_no_differences() {
        let table = TableDescription::builder()
            .key_schema(key(PK, KeyType::Hash))
            .key_schema(key(SK, KeyType::Range))
            .attribute_definitions(attr(PK, ScalarAttributeType::B))
            .attribute_definitions(attr(SK, ScalarAttributeType::B))
            .attribute_definitions(attr(ZO, ScalarAttributeType::B))
            .local_secondary_indexes(
                aws_sdk_dynamodb::types::LocalSecondaryIndexDescription::builder()
                    .index_name(ZORDER_INDEX)
                    .key_schema(key(PK, KeyType::Hash))
                    .key_schema(key(ZO, KeyType::Range))
                    .build(),
            )
            .build();
        assert_eq!(differences(&table), Vec::<String>::new());
    }
}
