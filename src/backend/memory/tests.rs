//! Test helpers for the memory store's unit tests: run a command written as
//! one line and compare a compact rendering of its reply.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::{MemoryConfig, MemoryStore};
use crate::protocol::Frame;

pub fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// Whitespace-separated arguments.
pub fn args(line: &str) -> Vec<Bytes> {
    line.split_whitespace().map(b).collect()
}

pub struct Harness {
    pub store: Arc<MemoryStore>,
}

impl Harness {
    pub fn new() -> Harness {
        Harness {
            store: MemoryStore::new(MemoryConfig::default()),
        }
    }

    pub async fn run(&self, line: &str) -> Frame {
        self.store.execute(0, &args(line)).await
    }

    /// Asserts the reply's compact rendering (see [`Harness::render`]).
    pub async fn is(&self, line: &str, expected: &str) {
        let got = self.render(&self.run(line).await);
        assert_eq!(got, expected, "{line}");
    }

    pub fn bulk(&self, data: Bytes) -> Frame {
        crate::protocol::reply::bulk(data)
    }

    /// `+simple`, `-error`, `:int`, `,double` (as Redis prints it), `$bulk`,
    /// `_` null, `[a, b]` array, `>[…]` push, `~[…]` set (sorted),
    /// `%[k: v]` map.
    pub fn render(&self, frame: &Frame) -> String {
        render(frame)
    }

    /// `(cursor, items)` of a SCAN reply.
    pub fn scan_page(&self, frame: &Frame) -> (String, Vec<String>) {
        match frame {
            Frame::Array { data, .. } => {
                let cursor = render(&data[0]).trim_start_matches('$').to_owned();
                let items = match &data[1] {
                    Frame::Array { data, .. } => data.iter().map(render).collect(),
                    other => panic!("not a scan page: {other:?}"),
                };
                (cursor, items)
            }
            other => panic!("not a scan page: {other:?}"),
        }
    }

    /// Waits until `n` calls are blocked on `key` (database 0).
    pub async fn wait_for_waiters(&self, key: &str, n: usize) {
        for _ in 0..500 {
            let count = {
                let st = super::lock(&self.store.state);
                st.blocked.waiting(0, key.as_bytes())
            };
            if count >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        panic!("{n} waiters never blocked on {key}");
    }
}

pub fn render(frame: &Frame) -> String {
    let list =
        |items: &mut dyn Iterator<Item = &Frame>| items.map(render).collect::<Vec<_>>().join(", ");
    match frame {
        Frame::SimpleString { data, .. } => format!("+{}", String::from_utf8_lossy(data)),
        Frame::SimpleError { data, .. } => format!("-{data}"),
        Frame::Number { data, .. } => format!(":{data}"),
        Frame::Double { data, .. } => {
            format!(",{}", crate::semantics::number::format_double(*data))
        }
        Frame::BlobString { data, .. } => format!("${}", String::from_utf8_lossy(data)),
        Frame::Null => "_".into(),
        Frame::Array { data, .. } => format!("[{}]", list(&mut data.iter())),
        Frame::Push { data, .. } => format!(">[{}]", list(&mut data.iter())),
        Frame::Set { data, .. } => {
            let mut items: Vec<String> = data.iter().map(render).collect();
            items.sort();
            format!("~[{}]", items.join(", "))
        }
        Frame::Map { data, .. } => format!(
            "%[{}]",
            data.iter()
                .map(|(k, v)| format!("{}: {}", render(k), render(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => format!("{other:?}"),
    }
}
