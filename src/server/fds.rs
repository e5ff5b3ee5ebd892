//! The process's open-file limit. Every client and upstream connection is a
//! descriptor, and the soft limit is often 1024 while `limits.max_clients`
//! defaults to 10000: at start the soft limit is raised as far as those need
//! (up to the hard limit), and a warning says when they cannot all fit.

/// Descriptors beyond the clients: listeners, upstream connections, files, logs.
const RESERVED: u64 = 256;

/// Raises the soft open-file limit as far as the hard limit allows; warns when
/// `max_clients` clients plus `upstream` connections would not fit.
pub fn raise_open_file_limit(max_clients: usize, upstream: usize) {
    let needed = (max_clients as u64)
        .saturating_add(upstream as u64)
        .saturating_add(RESERVED);
    match rlimit::increase_nofile_limit(needed) {
        Ok(limit) if limit < needed => tracing::warn!(
            open_files = limit,
            needed,
            "the open-file limit ({limit}) is below limits.max_clients plus upstream connections ({needed}): \
             connections past it are refused. Raise the hard limit (ulimit -Hn, LimitNOFILE=) or lower limits.max_clients"
        ),
        Ok(limit) => tracing::debug!(open_files = limit, "open-file limit"),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read or raise the open-file limit (RLIMIT_NOFILE)")
        }
    }
}
