//! Issue 8, criteria 5 and 6: one behaviour suite for every backend.
//!
//! The same command scripts ([`scripts`]) run, in RESP2 and in RESP3, on a
//! redis-server of their own (the oracle) and through sealcache on the route
//! under test ([`route`]): a Redis route and a memory route. Replies are
//! compared byte for byte ([`script`] says what is normalised: only what
//! Redis leaves unordered). A line the command table refuses on that route
//! (rejected on ciphertext, not served by the backend's kind, a capability
//! it lacks) must get sealcache's exact refusal instead. [`coverage`] fails
//! when a command a route supports has no line that compares it.
//!
//! Each route gets the same tests from one macro; a new backend kind (the
//! DynamoDB route) is a [`route::Route`] value and one `behaviour_tests!`
//! line below.

pub mod coverage;
pub mod route;
pub mod script;
pub mod scripts;

use crate::support::twin::Proto;
use route::Route;
use script::{Runner, Script};

/// Runs every script of `scripts` in both protocols against one proxy on
/// `route`, then fails with every difference at once.
async fn run_all(route: Route, scripts: &[Script]) {
    let fixture = route.start();
    let mut mismatches = Vec::new();
    for proto in [Proto::Resp3, Proto::Resp2] {
        let mut runner = Runner::open(&fixture, proto).await;
        for script in scripts {
            runner.run(script).await;
        }
        mismatches.append(&mut runner.mismatches);
    }
    assert!(
        mismatches.is_empty(),
        "{} replies differ on the {route:?} route:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

macro_rules! behaviour_tests {
    ($module:ident, $route:expr) => {
        mod $module {
            use super::scripts::*;

            /// Strings, keys, hashes, lists, sets, sorted sets, streams.
            #[tokio::test]
            async fn data_commands_match_redis_server() {
                super::run_all($route, DATA).await;
            }

            /// MULTI/EXEC/WATCH, blocking commands woken by another client,
            /// Pub/Sub between clients, and expiry.
            #[tokio::test]
            async fn clients_and_time_match_redis_server() {
                super::run_all($route, BETWEEN_CLIENTS).await;
            }
        }
    };
}

behaviour_tests!(redis, super::route::REDIS);
behaviour_tests!(memory, super::route::MEMORY);
behaviour_tests!(dynamodb, super::route::DYNAMODB);
