//! What upstream introspection shows a client (issue 12, criterion 7): no
//! paths, process details or addresses of the upstream's host in INFO and
//! CONFIG GET, and no SLOWLOG GET (other clients' keys and ciphertext) unless
//! an operator allows it.

use crate::support::{Certs, RedisServer, Sealcache, random_password};

fn upstream() -> RedisServer {
    RedisServer::start_tls(&Certs::generate(), &random_password(32))
}

#[tokio::test]
async fn info_and_config_get_hide_the_upstreams_host() {
    let redis = upstream();
    let proxy = Sealcache::builder(&redis).start();
    let mut con = proxy.client().await;
    let mut direct = redis.client().await;

    let info: String = redis::cmd("INFO").query_async(&mut con).await.unwrap();
    let direct_info: String = redis::cmd("INFO").query_async(&mut direct).await.unwrap();
    for field in ["executable:", "config_file:", "process_id:", "tcp_port:"] {
        assert!(direct_info.contains(field), "redis-server shows {field}");
        assert!(
            !info.contains(field),
            "INFO through sealcache shows {field}\n{info}"
        );
    }
    assert!(info.contains("redis_version:"), "the rest of INFO is there");

    let all: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("*")
        .query_async(&mut con)
        .await
        .unwrap();
    let names: Vec<&str> = all.iter().step_by(2).map(String::as_str).collect();
    for hidden in [
        "dir",
        "tls-cert-file",
        "tls-key-file",
        "tls-ca-cert-file",
        "port",
        "tls-port",
        "requirepass",
        "pidfile",
        "bind",
    ] {
        assert!(!names.contains(&hidden), "CONFIG GET * shows {hidden}");
    }
    assert!(
        names.contains(&"maxmemory"),
        "other parameters stay: {names:?}"
    );
    for value in all.iter().skip(1).step_by(2) {
        assert!(
            !value.contains(redis.certs().dir().to_str().unwrap()),
            "a path of the upstream's host leaked: {value}"
        );
    }
    let dir: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("dir")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(dir.is_empty(), "{dir:?}");
}

#[tokio::test]
async fn slowlog_get_is_refused_unless_allowed() {
    let redis = upstream();
    let proxy = Sealcache::builder(&redis).start();
    let mut con = proxy.client().await;
    let refused = redis::cmd("SLOWLOG")
        .arg("GET")
        .query_async::<redis::Value>(&mut con)
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("SLOWLOG GET is disabled")
            && refused.to_string().contains("allowed_admin_commands"),
        "{refused}"
    );
    let len: i64 = redis::cmd("SLOWLOG")
        .arg("LEN")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(
        len >= 0,
        "SLOWLOG LEN shows nothing private and stays available"
    );

    let allowed = Sealcache::builder(&redis)
        .yaml("allowed_admin_commands: [\"SLOWLOG|GET\"]")
        .start();
    let mut con = allowed.client().await;
    let entries: redis::Value = redis::cmd("SLOWLOG")
        .arg("GET")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(matches!(entries, redis::Value::Array(_)), "{entries:?}");
}
