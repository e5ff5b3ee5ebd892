//! Every DynamoDB call the store makes, counted, with DynamoDB's limits kept:
//! batches of at most 100 keys (BatchGetItem) or 25 writes (BatchWriteItem)
//! with unprocessed items retried with exponential backoff and full jitter,
//! paged Query and Scan, conditional single-item writes and transactions that
//! tell a lost race ([`Outcome::Conflict`]) from a failure.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    DeleteRequest, KeysAndAttributes, PutRequest, ReturnValuesOnConditionCheckFailure, Select,
    TransactWriteItem, WriteRequest,
};
use futures_util::FutureExt;
use futures_util::future::try_join_all;
use rand::Rng;

use super::DynamoStore;
use super::client::Op;
use super::error::DynamoError;
use super::item::{
    self, Gen, Item, Kind, META_SK, Meta, PK, SK, ZO, ZORDER_INDEX, b, get_b, key_item,
};

/// DynamoDB's limits.
pub const BATCH_GET_MAX: usize = 100;
pub const BATCH_WRITE_MAX: usize = 25;
pub const TRANSACT_MAX: usize = 100;
/// TransactWriteItems carries at most 4 MB; keep a margin for our estimate.
pub const TRANSACT_MAX_BYTES: usize = 3_500_000;
/// Rounds of retrying unprocessed batch items before giving up.
const UNPROCESSED_ROUNDS: u32 = 12;
/// Batches in flight at once for one command.
const BATCH_CONCURRENCY: usize = 4;
/// Waits for unprocessed batch items (DynamoDB is throttling: back off far).
pub const THROTTLED: Backoff = Backoff {
    base: Duration::from_millis(5),
    cap: Duration::from_millis(500),
};
/// Waits after a lost race: soon, but spread far enough that contending
/// writers stop wasting each other's attempts.
pub const CONTENDED: Backoff = Backoff {
    base: Duration::from_millis(5),
    cap: Duration::from_millis(250),
};

/// An exponentially growing window, waited in full jitter.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

/// How long to wait before retry `attempt` (0-based): a random part of an
/// exponentially growing window (full jitter).
pub fn backoff(attempt: u32, policy: Backoff) -> Duration {
    let window = policy
        .base
        .saturating_mul(1u32 << attempt.min(16))
        .min(policy.cap);
    let micros = window.as_micros() as u64;
    Duration::from_micros(rand::rng().random_range(0..=micros))
}

/// What a conditional write found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Committed,
    /// The condition failed: someone else wrote first.
    Conflict,
}

/// What a conditional write expects of the meta item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// No item.
    Absent,
    /// The item with this version.
    Version(u64),
}

impl Expect {
    pub fn of(found: Option<&Meta>) -> Expect {
        found.map_or(Expect::Absent, |m| Expect::Version(m.version))
    }

    /// `(condition, names, values)` for a ConditionExpression.
    pub fn condition(self) -> Filter {
        match self {
            Expect::Absent => (
                "attribute_not_exists(#pk)".into(),
                HashMap::from([("#pk".into(), PK.into())]),
                HashMap::new(),
            ),
            Expect::Version(v) => (
                "#v = :v".into(),
                HashMap::from([("#v".into(), "v".into())]),
                HashMap::from([(":v".into(), item::n(v))]),
            ),
        }
    }
}

/// Which sort keys a Query reads.
#[derive(Debug, Clone)]
pub enum Range {
    /// Sort keys starting with these bytes.
    Prefix(Vec<u8>),
    /// Sort keys between these, inclusive.
    Between(Vec<u8>, Vec<u8>),
}

#[derive(Debug, Clone)]
pub struct QuerySpec {
    pub pk: Vec<u8>,
    /// On the `zorder` index (keys only) instead of the table.
    pub zorder: bool,
    pub range: Range,
    pub forward: bool,
    /// Items evaluated per page at most.
    pub limit: Option<i32>,
    pub start: Option<Item>,
    pub consistent: bool,
    /// Only the keys (pk, sk): for deleting.
    pub keys_only: bool,
}

impl QuerySpec {
    pub fn new(pk: Vec<u8>, range: Range, consistent: bool) -> QuerySpec {
        QuerySpec {
            pk,
            zorder: false,
            range,
            forward: true,
            limit: None,
            start: None,
            consistent,
            keys_only: false,
        }
    }
}

/// A filter or condition expression: the expression, attribute names, attribute values.
pub type Filter = (
    String,
    HashMap<String, String>,
    HashMap<String, item::AttrValue>,
);

/// One page of a Query or Scan.
pub struct Page {
    pub items: Vec<Item>,
    pub count: i64,
    pub last: Option<Item>,
}

/// Sends a batch, then what DynamoDB left unprocessed, with backoff and
/// jitter between rounds. `send` answers what a request returned and what
/// it left; the result is everything returned and how many items were
/// still left at the end.
pub async fn until_processed<T, O, E, F, Fut>(batch: Vec<T>, send: F) -> Result<(Vec<O>, usize), E>
where
    F: Fn(Vec<T>) -> Fut,
    Fut: Future<Output = Result<(Vec<O>, Vec<T>), E>>,
{
    let mut pending = batch;
    let mut out = Vec::new();
    for round in 0..=UNPROCESSED_ROUNDS {
        if round > 0 {
            tokio::time::sleep(backoff(round, THROTTLED)).await;
        }
        let (done, left) = send(pending).await?;
        out.extend(done);
        pending = left;
        if pending.is_empty() {
            return Ok((out, 0));
        }
    }
    Ok((out, pending.len()))
}

impl Page {
    fn new(count: i32, items: Option<Vec<Item>>, last: Option<Item>) -> Page {
        Page {
            count: i64::from(count),
            items: items.unwrap_or_default(),
            last: last.filter(|k| !k.is_empty()),
        }
    }
}

/// A conditional write that failed: ours after all (a retried attempt found
/// the item its first attempt wrote, with the version it wrote) or a lost race.
fn failed_condition(written: Option<&item::AttrValue>, found: Option<&Item>) -> Outcome {
    let ours = written.is_some() && found.and_then(|i| i.get("v")) == written;
    if ours {
        Outcome::Committed
    } else {
        Outcome::Conflict
    }
}

impl DynamoStore {
    pub(super) async fn get_item(
        &self,
        pk: &[u8],
        sk: &[u8],
        consistent: bool,
    ) -> Result<Option<Item>, DynamoError> {
        self.counts.count(Op::GetItem);
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_item(pk, sk)))
            .consistent_read(consistent)
            .send()
            .boxed()
            .await
            .map_err(|e| DynamoError::request(&self.at, "GetItem", &e))?;
        Ok(out.item)
    }

    pub(super) fn parse_meta(&self, pk: &[u8], item: &Item) -> Result<Meta, DynamoError> {
        Meta::from_item(item).map_err(|why| DynamoError::Corrupt {
            at: self.at.clone(),
            item: format!("for key '{}'", String::from_utf8_lossy(item::key_of(pk))),
            why,
        })
    }

    /// A key's meta item as stored (expired or not).
    pub(super) async fn get_meta(
        &self,
        pk: &[u8],
        consistent: bool,
    ) -> Result<Option<Meta>, DynamoError> {
        match self.get_item(pk, &META_SK, consistent).await? {
            Some(item) => Ok(Some(self.parse_meta(pk, &item)?)),
            None => Ok(None),
        }
    }

    /// Items by key, in batches of [`BATCH_GET_MAX`] (duplicates asked once),
    /// unprocessed keys retried with backoff.
    pub(super) async fn batch_get(
        &self,
        keys: &[(Vec<u8>, Vec<u8>)],
        consistent: bool,
    ) -> Result<HashMap<(Vec<u8>, Vec<u8>), Item>, DynamoError> {
        let mut seen = HashSet::new();
        let unique: Vec<&(Vec<u8>, Vec<u8>)> = keys.iter().filter(|k| seen.insert(*k)).collect();
        let mut found = HashMap::with_capacity(unique.len());
        for wave in unique.chunks(BATCH_GET_MAX * BATCH_CONCURRENCY) {
            let calls = wave.chunks(BATCH_GET_MAX).map(|batch| {
                let batch: Vec<Item> = batch.iter().map(|(pk, sk)| key_item(pk, sk)).collect();
                self.batch_get_one(batch, consistent)
            });
            for items in try_join_all(calls).await? {
                for item in items {
                    let (Some(pk), Some(sk)) = (get_b(&item, PK), get_b(&item, SK)) else {
                        continue;
                    };
                    found.insert((pk.to_vec(), sk.to_vec()), item);
                }
            }
        }
        Ok(found)
    }

    async fn batch_get_one(
        &self,
        keys: Vec<Item>,
        consistent: bool,
    ) -> Result<Vec<Item>, DynamoError> {
        let (items, left) = until_processed(keys, |pending| async move {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(pending))
                .consistent_read(consistent)
                .build()
                .map_err(|e| self.build_error("BatchGetItem", e))?;
            self.counts.count(Op::BatchGetItem);
            let mut out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .boxed()
                .await
                .map_err(|e| DynamoError::request(&self.at, "BatchGetItem", &e))?;
            let items = out
                .responses
                .take()
                .and_then(|mut r| r.remove(&self.table))
                .unwrap_or_default();
            let left = out
                .unprocessed_keys
                .and_then(|mut u| u.remove(&self.table))
                .map(|k| k.keys)
                .unwrap_or_default();
            Ok((items, left))
        })
        .await?;
        match left {
            0 => Ok(items),
            left => Err(self.throttled("BatchGetItem", left)),
        }
    }

    fn throttled(&self, operation: &'static str, left: usize) -> DynamoError {
        DynamoError::Request {
            at: self.at.clone(),
            operation,
            reason: format!(
                "{left} items were still unprocessed after {UNPROCESSED_ROUNDS} retries (DynamoDB is throttling). Fix: raise the table's capacity or use billing_mode: on_demand"
            ),
        }
    }

    fn build_error(&self, operation: &'static str, e: impl std::fmt::Display) -> DynamoError {
        DynamoError::Request {
            at: self.at.clone(),
            operation,
            reason: format!("the request could not be built: {e}"),
        }
    }

    /// Puts and deletes in batches of [`BATCH_WRITE_MAX`] (not atomic: only
    /// for items no reader can see yet, or garbage), unprocessed ones retried.
    pub(super) async fn batch_write(
        &self,
        puts: Vec<Item>,
        deletes: Vec<Item>,
    ) -> Result<(), DynamoError> {
        let mut requests = Vec::with_capacity(puts.len() + deletes.len());
        for item in puts {
            let put = PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(|e| self.build_error("BatchWriteItem", e))?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        for key in deletes {
            let delete = DeleteRequest::builder()
                .set_key(Some(key))
                .build()
                .map_err(|e| self.build_error("BatchWriteItem", e))?;
            requests.push(WriteRequest::builder().delete_request(delete).build());
        }
        let mut batches: Vec<Vec<WriteRequest>> = Vec::new();
        let mut rest = requests.into_iter().peekable();
        while rest.peek().is_some() {
            batches.push(rest.by_ref().take(BATCH_WRITE_MAX).collect());
        }
        let mut batches = batches.into_iter().peekable();
        while batches.peek().is_some() {
            let wave: Vec<_> = batches
                .by_ref()
                .take(BATCH_CONCURRENCY)
                .map(|batch| self.batch_write_one(batch))
                .collect();
            try_join_all(wave).await?;
        }
        Ok(())
    }

    async fn batch_write_one(&self, batch: Vec<WriteRequest>) -> Result<(), DynamoError> {
        let (_, left) = until_processed(batch, |pending| async move {
            self.counts.count(Op::BatchWriteItem);
            let out = self
                .client
                .batch_write_item()
                .request_items(&self.table, pending)
                .send()
                .boxed()
                .await
                .map_err(|e| DynamoError::request(&self.at, "BatchWriteItem", &e))?;
            let left = out
                .unprocessed_items
                .and_then(|mut u| u.remove(&self.table))
                .unwrap_or_default();
            Ok((Vec::<()>::new(), left))
        })
        .await?;
        match left {
            0 => Ok(()),
            left => Err(self.throttled("BatchWriteItem", left)),
        }
    }

    /// One page of a Query.
    pub(super) async fn query_page(
        &self,
        spec: &QuerySpec,
        count_only: bool,
    ) -> Result<Page, DynamoError> {
        let sort = if spec.zorder { ZO } else { SK };
        let mut names = HashMap::from([
            ("#pk".to_string(), PK.to_string()),
            ("#s".into(), sort.into()),
        ]);
        let mut values = HashMap::from([(":pk".to_string(), b(spec.pk.clone()))]);
        let condition = match &spec.range {
            Range::Prefix(prefix) => {
                values.insert(":p".into(), b(prefix.clone()));
                "#pk = :pk AND begins_with(#s, :p)"
            }
            Range::Between(lo, hi) => {
                values.insert(":lo".into(), b(lo.clone()));
                values.insert(":hi".into(), b(hi.clone()));
                "#pk = :pk AND #s BETWEEN :lo AND :hi"
            }
        };
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .scan_index_forward(spec.forward)
            .set_limit(spec.limit)
            .set_exclusive_start_key(spec.start.clone())
            .consistent_read(spec.consistent);
        if spec.zorder {
            request = request.index_name(ZORDER_INDEX);
        }
        if count_only {
            request = request.select(Select::Count);
        } else if spec.keys_only {
            names.insert("#k".into(), SK.into());
            request = request.projection_expression("#pk, #k");
        }
        self.counts.count(Op::Query);
        let out = request
            .set_expression_attribute_names(Some(names))
            .send()
            .boxed()
            .await
            .map_err(|e| DynamoError::request(&self.at, "Query", &e))?;
        Ok(Page::new(out.count, out.items, out.last_evaluated_key))
    }

    /// Every item a Query matches, page after page, up to `max` items.
    pub(super) async fn query_all(
        &self,
        mut spec: QuerySpec,
        max: Option<usize>,
    ) -> Result<Vec<Item>, DynamoError> {
        let mut items = Vec::new();
        loop {
            if let Some(max) = max {
                let left = max.saturating_sub(items.len());
                if left == 0 {
                    return Ok(items);
                }
                spec.limit = Some(i32::try_from(left).unwrap_or(i32::MAX));
            }
            let page = self.query_page(&spec, false).await?;
            items.extend(page.items);
            match page.last {
                Some(last) => spec.start = Some(last),
                None => return Ok(items),
            }
        }
    }

    /// How many items a Query matches (all pages).
    pub(super) async fn query_count(&self, mut spec: QuerySpec) -> Result<i64, DynamoError> {
        let mut total = 0;
        loop {
            let page = self.query_page(&spec, true).await?;
            total += page.count;
            match page.last {
                Some(last) => spec.start = Some(last),
                None => return Ok(total),
            }
        }
    }

    /// One page of a Scan of the whole table (`count_only`: just how many
    /// items passed the filter).
    pub(super) async fn scan_page(
        &self,
        start: Option<Item>,
        limit: i32,
        filter: Option<Filter>,
        count_only: bool,
        consistent: bool,
    ) -> Result<Page, DynamoError> {
        let mut request = self
            .client
            .scan()
            .table_name(&self.table)
            .limit(limit)
            .set_exclusive_start_key(start)
            .consistent_read(consistent);
        if let Some((expression, names, values)) = filter {
            request = request
                .filter_expression(expression)
                .set_expression_attribute_names(Some(names))
                .set_expression_attribute_values((!values.is_empty()).then_some(values));
        }
        if count_only {
            request = request.select(Select::Count);
        }
        self.counts.count(Op::Scan);
        let out = request
            .send()
            .boxed()
            .await
            .map_err(|e| DynamoError::request(&self.at, "Scan", &e))?;
        Ok(Page::new(out.count, out.items, out.last_evaluated_key))
    }

    /// PutItem on the condition that the meta item is as expected.
    pub(super) async fn put_if(&self, item: Item, expect: Expect) -> Result<Outcome, DynamoError> {
        self.put_on(item, expect.condition()).await
    }

    /// PutItem unless the item it replaces has elements (a generation):
    /// overwriting those would orphan them, so the caller then takes the
    /// slow path that reads first. One request for the common SET.
    pub(super) async fn put_unless_generation(&self, item: Item) -> Result<Outcome, DynamoError> {
        let condition = (
            "attribute_not_exists(#g)".to_string(),
            HashMap::from([("#g".to_string(), "g".to_string())]),
            HashMap::new(),
        );
        self.put_on(item, condition).await
    }

    /// PutItem on a condition. An attempt the SDK retries may find its own
    /// earlier, successful write: the version it wrote tells it so.
    async fn put_on(&self, item: Item, condition: Filter) -> Result<Outcome, DynamoError> {
        let written = item.get("v").cloned();
        let (condition, names, values) = condition;
        self.counts.count(Op::PutItem);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values((!values.is_empty()).then_some(values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .boxed()
            .await;
        match result {
            Ok(_) => Ok(Outcome::Committed),
            Err(e) => match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                    Ok(failed_condition(written.as_ref(), failed.item()))
                }
                _ => Err(DynamoError::request(&self.at, "PutItem", &e)),
            },
        }
    }

    pub(super) async fn delete_if(
        &self,
        pk: &[u8],
        expect: Expect,
    ) -> Result<Outcome, DynamoError> {
        let (condition, names, values) = expect.condition();
        self.counts.count(Op::DeleteItem);
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_item(pk, &META_SK)))
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values((!values.is_empty()).then_some(values))
            .send()
            .boxed()
            .await;
        match result {
            Ok(_) => Ok(Outcome::Committed),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(DeleteItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(Outcome::Conflict)
            }
            Err(e) => Err(DynamoError::request(&self.at, "DeleteItem", &e)),
        }
    }

    /// TransactWriteItems (the SDK adds an idempotency token, so its own
    /// retries cannot apply a transaction twice).
    pub(super) async fn transact(
        &self,
        actions: Vec<TransactWriteItem>,
    ) -> Result<Outcome, DynamoError> {
        self.counts.count(Op::TransactWriteItems);
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(actions))
            .send()
            .boxed()
            .await;
        match result {
            Ok(_) => Ok(Outcome::Committed),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                    let lost_race = cancelled.cancellation_reasons().iter().any(|r| {
                        matches!(
                            r.code(),
                            Some("ConditionalCheckFailed" | "TransactionConflict")
                        )
                    });
                    if lost_race {
                        Ok(Outcome::Conflict)
                    } else {
                        Err(DynamoError::request(&self.at, "TransactWriteItems", &e))
                    }
                }
                _ => Err(DynamoError::request(&self.at, "TransactWriteItems", &e)),
            },
        }
    }

    /// Deletes every element of an old generation (garbage once the meta item
    /// stopped naming it).
    pub(super) async fn cleanup(
        &self,
        pk: &[u8],
        kind: Kind,
        generation: &Gen,
    ) -> Result<(), DynamoError> {
        let mut spec = QuerySpec::new(
            pk.to_vec(),
            Range::Prefix(item::elem_prefix(kind, generation)),
            true,
        );
        spec.keys_only = true;
        loop {
            let page = self.query_page(&spec, false).await?;
            let keys: Vec<Item> = page
                .items
                .iter()
                .filter_map(|i| Some(key_item(get_b(i, PK)?, get_b(i, SK)?)))
                .collect();
            self.batch_write(Vec::new(), keys).await?;
            match page.last {
                Some(last) => spec.start = Some(last),
                None => return Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unprocessed_items_are_sent_again_after_a_backoff() {
        let sent = std::sync::Mutex::new(Vec::new());
        // DynamoDB processes only the first two items of each request.
        let (done, left) = until_processed((1..=5).collect(), |batch: Vec<u32>| {
            sent.lock().unwrap().push(batch.clone());
            let (done, left) = batch.split_at(batch.len().min(2));
            let result = Ok::<_, ()>((done.to_vec(), left.to_vec()));
            async move { result }
        })
        .await
        .unwrap();
        assert_eq!((done, left), (vec![1, 2, 3, 4, 5], 0));
        assert_eq!(
            *sent.lock().unwrap(),
            vec![vec![1, 2, 3, 4, 5], vec![3, 4, 5], vec![5]]
        );
        // Throttled for good: the rounds end, reporting what is left.
        let (_, left) = until_processed(vec![1, 2], |batch: Vec<u32>| async move {
            Ok::<_, ()>((Vec::<u32>::new(), batch))
        })
        .await
        .unwrap();
        assert_eq!(left, 2);
    }

    #[test]
    fn backoff_grows_and_stays_capped() {
        for attempt in 0..40 {
            let window = THROTTLED
                .base
                .saturating_mul(1 << attempt.min(16))
                .min(THROTTLED.cap);
            for _ in 0..20 {
                assert!(backoff(attempt, THROTTLED) <= window);
            }
        }
        assert!(
            (0..200).any(|_| backoff(10, THROTTLED) > THROTTLED.base),
            "jitter spreads retries"
        );
    }
}
