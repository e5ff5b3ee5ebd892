//! AWS DynamoDB Local (AWS's own emulator, a Java program) as an RAII guard.
//!
//! Lifecycle: `start` runs `java -jar DynamoDBLocal.jar -inMemory` on a free
//! loopback port with its output appended to `dynamodb.log`, and polls a
//! `ListTables` request until it answers. `stop` kills it (the "DynamoDB is
//! down" case); `restart` starts it again on the same port — empty, or with
//! its tables and items when started with `start_persistent` (which keeps
//! them in a file in its tempdir, as DynamoDB keeps them through an outage).
//! Drop kills it and, if the test is failing, prints the log.
//!
//! The emulator comes from the npm registry (`amplify-dynamodb-simulator`
//! carries DynamoDBLocal.jar); `scripts/test.sh` unpacks it into
//! `target/dynamodb-local` and exports its directory as `IT_DYNAMODB_LOCAL`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use tempfile::TempDir;

use super::process::ServerProcess;
use super::{LogFile, free_port, repo_path};

/// JVM start-up plus the emulator's own (~4 s with the flags below on two cores).
pub const START_DEADLINE: Duration = Duration::from_secs(60);
/// Credentials DynamoDB Local accepts (it checks only that they are present).
pub const ACCESS_KEY_ID: &str = "test";
pub const SECRET_ACCESS_KEY: &str = "test";
pub const REGION: &str = "us-east-1";

pub struct DynamoDbLocal {
    process: ServerProcess,
    persistent: bool,
    port: u16,
    dir: TempDir,
}

/// The unpacked emulator: `$IT_DYNAMODB_LOCAL`, or `target/dynamodb-local`.
pub fn emulator_dir() -> PathBuf {
    let dir = std::env::var_os("IT_DYNAMODB_LOCAL")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_path("target/dynamodb-local"));
    assert!(
        dir.join("DynamoDBLocal.jar").exists(),
        "{} has no DynamoDBLocal.jar: run scripts/test.sh once to install DynamoDB Local",
        dir.display()
    );
    dir
}

impl DynamoDbLocal {
    /// Starts an empty, in-memory DynamoDB Local; returns once it answers.
    pub fn start() -> DynamoDbLocal {
        Self::launch(false)
    }

    /// Starts one that keeps its data on disk, through `stop` and `restart`.
    pub fn start_persistent() -> DynamoDbLocal {
        Self::launch(true)
    }

    fn launch(persistent: bool) -> DynamoDbLocal {
        let dir = tempfile::Builder::new()
            .prefix("sealcache-dynamodb-")
            .tempdir()
            .expect("create dynamodb tempdir");
        let process = ServerProcess::new(
            "DynamoDB Local",
            "dynamodb-local",
            dir.path().join("dynamodb.log"),
        );
        let mut server = DynamoDbLocal {
            process,
            persistent,
            port: free_port(),
            dir,
        };
        server.spawn_and_wait();
        server
    }

    fn spawn_and_wait(&mut self) {
        let emulator = emulator_dir();
        // On disk in the tempdir (the working directory) when persistent.
        let storage: &[&str] = if self.persistent {
            &["-sharedDb", "-dbPath", "."]
        } else {
            &["-inMemory"]
        };
        let mut command = Command::new("java");
        command
            // Quick start and a small heap: tests want a responsive emulator, not peak throughput.
            .args(["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xss512k"])
            .arg(format!(
                "-Djava.library.path={}",
                emulator.join("DynamoDBLocal_lib").display()
            ))
            .arg("-jar")
            .arg(emulator.join("DynamoDBLocal.jar"))
            .args(storage)
            .args(["-disableTelemetry", "-port"])
            .arg(self.port.to_string())
            .current_dir(self.dir.path());
        let port = self.port;
        let waiting_for = format!("answer on port {port}");
        self.process
            .spawn_and_wait(&mut command, START_DEADLINE, &waiting_for, || {
                list_tables(port).then_some(())
            });
    }

    /// Kills the emulator (SIGKILL) and waits for it.
    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// Starts it again on the same port (empty unless persistent); returns once it answers.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn_and_wait();
    }

    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`, for `endpoint_url`.
    pub fn endpoint_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> &LogFile {
        self.process.log()
    }

    /// Every item of the raw `table`, page by page.
    pub async fn raw_items(
        &self,
        table: &str,
    ) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        let raw = self.client().await;
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = raw
                .scan()
                .table_name(table)
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            items.extend(page.items.unwrap_or_default());
            start = page.last_evaluated_key;
            if start.is_none() {
                return items;
            }
        }
    }

    /// The value attribute of `key`'s meta item in database 0 of the raw
    /// `table` (a string small enough to sit in one item: the envelope),
    /// `None` when there is no such item. docs/dynamodb.md draws the layout:
    /// `pk` = database index (4 bytes) ‖ key, `sk` = 0x00, value in `val`.
    pub async fn raw_string(&self, table: &str, key: &str) -> Option<Vec<u8>> {
        let mut pk = 0u32.to_be_bytes().to_vec();
        pk.extend_from_slice(key.as_bytes());
        let got = self
            .client()
            .await
            .get_item()
            .table_name(table)
            .key("pk", AttributeValue::B(pk.into()))
            .key("sk", AttributeValue::B(vec![0].into()))
            .consistent_read(true)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GetItem {key} from the raw table {table}: {e:?}"));
        let item = got.item?;
        match item.get("val") {
            Some(AttributeValue::B(value)) => Some(value.as_ref().to_vec()),
            other => panic!("{key}: the meta item has no binary value attribute: {other:?}"),
        }
    }

    /// An SDK client for reading the raw table in tests.
    pub async fn client(&self) -> aws_sdk_dynamodb::Client {
        let credentials = credentials();
        // The SDK is built without its default HTTPS client (sealcache uses rustls with ring).
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .http_client(http)
            .region(aws_sdk_dynamodb::config::Region::new(REGION))
            .endpoint_url(self.endpoint_url())
            .credentials_provider(credentials)
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }
}

/// The static credentials DynamoDB Local accepts.
pub fn credentials() -> aws_sdk_dynamodb::config::Credentials {
    aws_sdk_dynamodb::config::Credentials::new(
        ACCESS_KEY_ID,
        SECRET_ACCESS_KEY,
        None,
        None,
        "sealcache-tests",
    )
}

/// Whether a `ListTables` call over plain HTTP gets a JSON answer.
fn list_tables(port: u16) -> bool {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(250)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let body = "{}";
    let request = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Amz-Target: DynamoDB_20120810.ListTables\r\n\
         Content-Type: application/x-amz-json-1.0\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/20260101/{REGION}/dynamodb/aws4_request, SignedHeaders=host, Signature=0\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.starts_with("HTTP/1.1 200") && response.contains("TableNames")
}
