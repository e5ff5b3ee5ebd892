//! A scripted stand-in for DynamoDB's HTTP endpoint, for unit tests of what
//! the store sends (retries, CreateTable's request): it answers each request
//! with the next scripted reply and hands back every request body.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

/// `(operation, body)` of each request served.
pub type Served = Vec<(String, String)>;

/// Serves `replies` (HTTP status, JSON body) in order on a loopback port;
/// returns its URL and a handle that yields the requests once all are served.
pub async fn fake_dynamodb(replies: Vec<(u16, String)>) -> (String, JoinHandle<Served>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let mut served = Vec::new();
        for (status, body) in replies {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            // Headers, then the body their Content-Length announces.
            let (head, length) = loop {
                let n = socket.read(&mut buf).await.unwrap();
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request).into_owned();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().to_owned())
                        })
                        .map_or(0, |v| v.parse::<usize>().unwrap());
                    if request.len() >= end + 4 + length {
                        break (text[..end].to_owned(), length);
                    }
                }
            };
            let operation = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .starts_with("x-amz-target:")
                        .then(|| l.rsplit('.').next().unwrap_or("").trim().to_owned())
                })
                .unwrap_or_default();
            let start = request.len() - length;
            served.push((
                operation,
                String::from_utf8_lossy(&request[start..]).into_owned(),
            ));
            let response = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            socket.write_all(response.as_bytes()).await.unwrap();
        }
        served
    });
    (url, server)
}

/// A DynamoDB error reply.
pub fn error(status: u16, code: &str, message: &str) -> (u16, String) {
    (
        status,
        format!(r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{code}","message":"{message}"}}"#),
    )
}

pub fn ok(body: &str) -> (u16, String) {
    (200, body.to_owned())
}
