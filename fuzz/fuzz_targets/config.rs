//! AFL++ entry point; the checks live in `sealcache_fuzz::targets::config`.
fn main() {
    afl::fuzz!(|data: &[u8]| sealcache_fuzz::targets::config(data));
}
