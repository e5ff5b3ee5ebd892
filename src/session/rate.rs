//! The per-client command rate limit (`limits.rate_limit`): a token bucket
//! (governor's GCRA) per client connection. A command over it is answered with
//! an error saying the limit and the setting, and is not run; the connection
//! goes on.

use governor::{DefaultDirectRateLimiter, Quota};

use crate::config::RateLimit;
use crate::error::ProxyError;

pub struct CommandRate {
    limit: RateLimit,
    bucket: DefaultDirectRateLimiter,
}

impl CommandRate {
    /// `None` when the limit is off (the default): nothing is allocated.
    pub fn new(limit: Option<RateLimit>) -> Option<CommandRate> {
        let limit = limit?;
        let quota = Quota::per_second(limit.commands_per_sec).allow_burst(limit.burst);
        Some(CommandRate {
            limit,
            bucket: DefaultDirectRateLimiter::direct(quota),
        })
    }

    /// Takes one command's token, or says why the command may not run.
    pub fn admit(&self) -> Result<(), ProxyError> {
        self.bucket.check().map_err(|_| ProxyError::RateLimited {
            commands_per_sec: self.limit.commands_per_sec.get(),
            burst: self.limit.burst.get(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;

    #[test]
    fn a_burst_passes_and_the_next_command_is_refused_with_the_setting_named() {
        let rate = CommandRate::new(Some(RateLimit {
            commands_per_sec: NonZeroU32::new(1).unwrap(),
            burst: NonZeroU32::new(3).unwrap(),
        }))
        .expect("a limit");
        for _ in 0..3 {
            rate.admit().expect("within the burst");
        }
        let refused = rate.admit().expect_err("over the burst").to_string();
        assert!(refused.starts_with("ERR sealcache: "), "{refused}");
        assert!(
            refused.contains("1 commands per second (bursts of 3)"),
            "{refused}"
        );
        assert!(
            refused.contains("limits.rate_limit.commands_per_sec"),
            "{refused}"
        );
        assert!(CommandRate::new(None).is_none());
    }
}
