//! Commands over the keyspace or a whole collection, paged: SCAN, KEYS,
//! DBSIZE, RANDOMKEY, FLUSHDB/FLUSHALL (DynamoDB Scans of the whole table:
//! docs/dynamodb.md warns about their cost) and HSCAN/SSCAN/ZSCAN (Queries).
//!
//! A SCAN cursor stands for DynamoDB's LastEvaluatedKey, which is far larger
//! than Redis's 64-bit cursor, so the sidecar keeps it in memory
//! ([`Cursors`]) under a random cursor number: a client continues a scan
//! through the same sidecar, within [`CURSOR_LIFETIME`].

use std::collections::{HashMap, VecDeque};
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::Rng;

use super::DynamoStore;
use super::commands::{int, is};
use super::io::{Filter, Page, QuerySpec};
use super::item::{
    self, AttrValue, DB_PREFIX_LEN, Item, Kind, META_SK, PK, SK, b, get_b, key_item,
};
use super::tx::{Fail, Tx, now_ms, reply_err, transact};
use crate::protocol::Frame;
use crate::protocol::reply::{array, bulk, int as int_reply, null, ok};
use crate::semantics::errors;
use crate::semantics::glob;
use crate::semantics::number::{format_double, parse_cursor};
use crate::semantics::scan::{LISTPACK_ENTRIES, LISTPACK_VALUE, listpack_score};

/// Cursors kept per sidecar; the oldest go first.
const MAX_CURSORS: usize = 10_000;
pub const CURSOR_LIFETIME: Duration = Duration::from_secs(3600);
/// Items a full-table Scan reads per page.
const SCAN_PAGE: i32 = 1000;
/// SCAN's COUNT is a hint of work: this many items evaluated per key asked for.
const SCAN_ITEMS_PER_COUNT: i64 = 10;

/// Where paged scans stopped, by cursor number.
#[derive(Default)]
pub struct Cursors {
    positions: HashMap<u64, (Instant, Position)>,
    order: VecDeque<u64>,
}

#[derive(Clone)]
enum Position {
    /// SCAN: the table's LastEvaluatedKey.
    Table(Item),
    /// HSCAN/SSCAN/ZSCAN: the key, its generation, the LastEvaluatedKey.
    Elements {
        pk: Vec<u8>,
        generation: item::Gen,
        last: Item,
    },
}

impl Cursors {
    fn save(&mut self, position: Position) -> u64 {
        let mut rng = rand::rng();
        let mut id: u64 = rng.random_range(1..u64::MAX >> 1);
        while self.positions.contains_key(&id) {
            id = rng.random_range(1..u64::MAX >> 1);
        }
        self.positions.insert(id, (Instant::now(), position));
        self.order.push_back(id);
        while self.order.len() > MAX_CURSORS {
            if let Some(old) = self.order.pop_front() {
                self.positions.remove(&old);
            }
        }
        id
    }

    fn take(&mut self, id: u64) -> Option<Position> {
        let (saved, position) = self.positions.remove(&id)?;
        self.order.retain(|i| *i != id);
        (saved.elapsed() < CURSOR_LIFETIME).then_some(position)
    }
}

fn unknown_cursor(cursor: u64) -> Fail {
    reply_err(format!(
        "ERR sealcache: SCAN cursor {cursor} is unknown to this sidecar: the dynamodb backend keeps a cursor for {} minutes in the sidecar that returned it; start again from 0",
        CURSOR_LIFETIME.as_secs() / 60
    ))
}

/// SCAN-family options.
struct ScanOptions {
    count: i64,
    pattern: Option<Bytes>,
    kind: Option<Bytes>,
}

fn scan_options(args: &[Bytes], allow_type: bool) -> Result<ScanOptions, Fail> {
    let mut o = ScanOptions {
        count: 10,
        pattern: None,
        kind: None,
    };
    let mut i = 0;
    while i < args.len() {
        let more = args.len() - i >= 2;
        if is(&args[i], "COUNT") && more {
            o.count = int(&args[i + 1])?;
            if o.count < 1 {
                return Err(reply_err(errors::SYNTAX));
            }
        } else if is(&args[i], "MATCH") && more {
            let pattern = args[i + 1].clone();
            o.pattern = (pattern.as_ref() != b"*").then_some(pattern);
        } else if is(&args[i], "TYPE") && allow_type && more {
            o.kind = Some(args[i + 1].clone());
        } else {
            return Err(reply_err(errors::SYNTAX));
        }
        i += 2;
    }
    Ok(o)
}

fn cursor_arg(arg: &[u8]) -> Result<u64, Fail> {
    parse_cursor(arg).ok_or_else(|| reply_err(errors::INVALID_CURSOR))
}

/// The filter for live meta items of database `db` (optionally of one type).
fn meta_filter(db: u32, kind: Option<&str>, now: i64, prefix: &[u8]) -> Filter {
    let mut expression = String::from(
        "begins_with(#pk, :db) AND #sk = :meta AND attribute_exists(#t) AND (attribute_not_exists(#x) OR #x > :now)",
    );
    let mut names = HashMap::from([
        ("#pk".to_string(), PK.to_string()),
        ("#sk".into(), SK.into()),
        ("#t".into(), "t".into()),
        ("#x".into(), "x".into()),
    ]);
    let mut start = db.to_be_bytes().to_vec();
    start.extend_from_slice(prefix);
    let mut values = HashMap::from([
        (":db".to_string(), b(start)),
        (":meta".into(), b(META_SK.to_vec())),
        (":now".into(), item::n(now)),
    ]);
    if let Some(kind) = kind {
        expression.push_str(" AND #t = :type");
        values.insert(":type".into(), AttrValue::S(kind.into()));
    }
    names.shrink_to_fit();
    (expression, names, values)
}

/// Keys of the live meta items on a page.
fn keys_on(page: &Page) -> Vec<Bytes> {
    page.items
        .iter()
        .filter_map(|i| get_b(i, PK).map(|pk| Bytes::copy_from_slice(item::key_of(pk))))
        .collect()
}

/// The literal start of a glob pattern (keys with it are the only candidates).
fn literal_prefix(pattern: &[u8]) -> &[u8] {
    let end = pattern
        .iter()
        .position(|c| matches!(c, b'*' | b'?' | b'[' | b'\\'))
        .unwrap_or(pattern.len());
    &pattern[..end]
}

pub async fn scan(store: &DynamoStore, db: u32, args: &[Bytes]) -> Result<Frame, Fail> {
    let cursor = cursor_arg(&args[1])?;
    let o = scan_options(&args[2..], true)?;
    let start = if cursor == 0 {
        None
    } else {
        match store.cursors.lock().map(|mut c| c.take(cursor)) {
            Ok(Some(Position::Table(last))) => Some(last),
            _ => return Err(unknown_cursor(cursor)),
        }
    };
    let kind = match &o.kind {
        // An unknown type name matches nothing, as in Redis 7.0.
        Some(name) => match Kind::from_name(&name.to_ascii_lowercase()) {
            Some(kind) => Some(kind.name()),
            None => return Ok(array(vec![bulk("0"), array(Vec::new())])),
        },
        None => None,
    };
    let prefix = o.pattern.as_deref().map(literal_prefix).unwrap_or_default();
    let limit = i32::try_from(o.count.saturating_mul(SCAN_ITEMS_PER_COUNT)).unwrap_or(i32::MAX);
    let page = store
        .scan_page(
            start,
            limit,
            Some(meta_filter(db, kind, now_ms(), prefix)),
            false,
            store.consistent_reads,
        )
        .await?;
    let keys: Vec<Frame> = keys_on(&page)
        .into_iter()
        .filter(|k| o.pattern.as_ref().is_none_or(|p| glob::matches(p, k)))
        .map(bulk)
        .collect();
    let next = match page.last {
        Some(last) => store
            .cursors
            .lock()
            .map(|mut c| c.save(Position::Table(last)))
            .unwrap_or(0),
        None => 0,
    };
    Ok(array(vec![bulk(next.to_string()), array(keys)]))
}

/// Scans the live meta items of `db` whose keys start with `prefix`, page
/// by page from `start`, until `each` breaks (its value) or the table ends.
async fn scan_metas<T>(
    store: &DynamoStore,
    db: u32,
    prefix: &[u8],
    count_only: bool,
    mut start: Option<Item>,
    mut each: impl FnMut(Page) -> ControlFlow<T>,
) -> Result<Option<T>, Fail> {
    let now = now_ms();
    loop {
        let filter = meta_filter(db, None, now, prefix);
        let page = store
            .scan_page(
                start,
                SCAN_PAGE,
                Some(filter),
                count_only,
                store.consistent_reads,
            )
            .await?;
        let last = page.last.clone();
        if let ControlFlow::Break(value) = each(page) {
            return Ok(Some(value));
        }
        match last {
            Some(last) => start = Some(last),
            None => return Ok(None),
        }
    }
}

pub async fn keys(store: &DynamoStore, db: u32, args: &[Bytes]) -> Result<Frame, Fail> {
    let pattern = &args[1];
    let mut keys = Vec::new();
    scan_metas(store, db, literal_prefix(pattern), false, None, |page| {
        keys.extend(
            keys_on(&page)
                .into_iter()
                .filter(|k| glob::matches(pattern, k))
                .map(bulk),
        );
        ControlFlow::<()>::Continue(())
    })
    .await?;
    Ok(array(keys))
}

pub async fn dbsize(store: &DynamoStore, db: u32, _args: &[Bytes]) -> Result<Frame, Fail> {
    let mut total = 0;
    scan_metas(store, db, &[], true, None, |page| {
        total += page.count;
        ControlFlow::<()>::Continue(())
    })
    .await?;
    Ok(int_reply(total))
}

/// RANDOMKEY: the first live key after a random point of the table's hash
/// order, or from the start when there is none after it.
pub async fn randomkey(store: &DynamoStore, db: u32, _args: &[Bytes]) -> Result<Frame, Fail> {
    let mut random_pk = db.to_be_bytes().to_vec();
    random_pk.extend_from_slice(&rand::random::<[u8; 16]>());
    for start in [Some(key_item(&random_pk, &META_SK)), None] {
        let first = scan_metas(store, db, &[], false, start, |page| {
            match keys_on(&page).into_iter().next() {
                Some(key) => ControlFlow::Break(key),
                None => ControlFlow::Continue(()),
            }
        })
        .await?;
        if let Some(key) = first {
            return Ok(bulk(key));
        }
    }
    Ok(null())
}

/// FLUSHDB / FLUSHALL [ASYNC|SYNC]: every item of the database (or table),
/// deleted in batches. Not atomic: a concurrent writer may keep a key.
pub async fn flush(store: &DynamoStore, db: u32, args: &[Bytes], all: bool) -> Result<Frame, Fail> {
    match &args[1..] {
        [] => {}
        [mode] if is(mode, "ASYNC") || is(mode, "SYNC") => {}
        _ => return Err(reply_err(errors::SYNTAX)),
    }
    let mut start = None;
    loop {
        let filter = (!all).then(|| {
            (
                "begins_with(#pk, :db)".to_string(),
                HashMap::from([("#pk".to_string(), PK.to_string())]),
                HashMap::from([(":db".to_string(), b(db.to_be_bytes().to_vec()))]),
            )
        });
        let page = store
            .scan_page(start, SCAN_PAGE, filter, false, true)
            .await?;
        let doomed: Vec<Item> = page
            .items
            .iter()
            .filter(|i| get_b(i, PK).is_some_and(|pk| pk.len() >= DB_PREFIX_LEN))
            .filter_map(|i| Some(key_item(get_b(i, PK)?, get_b(i, SK)?)))
            .collect();
        store.batch_write(Vec::new(), doomed).await?;
        match page.last {
            Some(last) => start = Some(last),
            None => return Ok(ok()),
        }
    }
}

/// HSCAN, SSCAN, ZSCAN: a Query over the key's elements, COUNT per page.
pub async fn element_scan(
    store: &DynamoStore,
    db: u32,
    args: &[Bytes],
    kind: Kind,
) -> Result<Frame, Fail> {
    let key = args[1].clone();
    let cursor = cursor_arg(&args[2])?;
    let o = scan_options(&args[3..], false)?;
    let meta = transact!(store, db, false, |tx| tx.typed(&key, kind))?;
    let empty = || array(vec![bulk("0"), array(Vec::new())]);
    let Some(meta) = meta else {
        return Ok(empty());
    };
    let pk = item::pk(db, &key);
    let generation = meta.generation.unwrap_or_default();
    if let Some(whole) = small_scan(store, &meta, &pk, kind, &o).await? {
        return Ok(whole);
    }
    let start = if cursor == 0 {
        None
    } else {
        match store.cursors.lock().map(|mut c| c.take(cursor)) {
            Ok(Some(Position::Elements {
                pk: p,
                generation: g,
                last,
            })) if p == pk => {
                // Replaced since: its elements are all new, so start over.
                (g == generation).then_some(last)
            }
            _ => return Err(unknown_cursor(cursor)),
        }
    };
    let mut spec = QuerySpec::new(pk.clone(), Tx::everything(&meta), store.consistent_reads);
    spec.limit = Some(i32::try_from(o.count).unwrap_or(i32::MAX));
    spec.start = start;
    let page = store.query_page(&spec, false).await?;
    let out = page_entries(
        page.items
            .iter()
            .filter_map(|i| item::Elem::from_item(i, kind, &generation)),
        kind,
        &o,
        format_double,
    );
    let next = match page.last {
        Some(last) => store
            .cursors
            .lock()
            .map(|mut c| {
                c.save(Position::Elements {
                    pk,
                    generation,
                    last,
                })
            })
            .unwrap_or(0),
        None => 0,
    };
    Ok(array(vec![bulk(next.to_string()), array(out)]))
}

/// What redis-server would keep in a listpack (a hash or sorted set of at
/// most 128 entries, none longer than 64 bytes) is scanned whole, whatever
/// the cursor and COUNT, with integral scores as integers — as Redis does.
/// `None` for anything larger (or a set: sealed members are never the
/// integers of an intset), which pages by COUNT.
async fn small_scan(
    store: &DynamoStore,
    meta: &item::Meta,
    pk: &[u8],
    kind: Kind,
    o: &ScanOptions,
) -> Result<Option<Frame>, Fail> {
    if !matches!(kind, Kind::Hash | Kind::ZSet) || meta.count > LISTPACK_ENTRIES as i64 {
        return Ok(None);
    }
    let generation = meta.generation.unwrap_or_default();
    let mut spec = QuerySpec::new(pk.to_vec(), Tx::everything(meta), store.consistent_reads);
    spec.limit = Some(LISTPACK_ENTRIES as i32 + 1);
    let page = store.query_page(&spec, false).await?;
    let elems: Vec<item::Elem> = page
        .items
        .iter()
        .filter_map(|i| item::Elem::from_item(i, kind, &generation))
        .collect();
    let fits = |b: &[u8]| b.len() <= LISTPACK_VALUE;
    if page.last.is_some()
        || elems.len() > LISTPACK_ENTRIES
        || !elems
            .iter()
            .all(|e| fits(&e.name()) && (kind != Kind::Hash || fits(&e.value())))
    {
        return Ok(None);
    }
    let out = page_entries(elems, kind, o, listpack_score);
    Ok(Some(array(vec![bulk("0"), array(out)])))
}

/// A page of HSCAN/SSCAN/ZSCAN as the reply lists it: each name MATCH lets
/// through, followed by a hash's value or a sorted set's score (as `score`
/// writes it).
fn page_entries(
    elems: impl IntoIterator<Item = item::Elem>,
    kind: Kind,
    o: &ScanOptions,
    score: fn(f64) -> String,
) -> Vec<Frame> {
    let mut out = Vec::new();
    for elem in elems {
        let name = elem.name();
        if o.pattern.as_ref().is_some_and(|p| !glob::matches(p, &name)) {
            continue;
        }
        out.push(bulk(name));
        match kind {
            Kind::Hash => out.push(bulk(elem.value())),
            Kind::ZSet => out.push(bulk(score(elem.score.unwrap_or_default()))),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_bounded_and_single_use() {
        let mut cursors = Cursors::default();
        let first = cursors.save(Position::Table(Item::new()));
        assert!(first > 0);
        assert!(cursors.take(first).is_some());
        assert!(cursors.take(first).is_none());
        for _ in 0..MAX_CURSORS + 5 {
            cursors.save(Position::Table(Item::new()));
        }
        assert_eq!(cursors.positions.len(), MAX_CURSORS);
    }

    #[test]
    fn glob_prefixes_stop_at_wildcards() {
        assert_eq!(literal_prefix(b"user:*"), b"user:");
        assert_eq!(literal_prefix(b"a?c"), b"a");
        assert_eq!(literal_prefix(b"\\*x"), b"");
        assert_eq!(literal_prefix(b"exact"), b"exact");
    }
}
