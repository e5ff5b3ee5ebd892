//! AFL++ entry point; the checks live in `sealcache_fuzz::targets::reply`.
fn main() {
    afl::fuzz!(|data: &[u8]| sealcache_fuzz::targets::reply(data));
}
