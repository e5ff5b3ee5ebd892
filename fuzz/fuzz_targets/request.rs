//! AFL++ entry point; the checks live in `sealcache_fuzz::targets::request`.
fn main() {
    afl::fuzz!(|data: &[u8]| sealcache_fuzz::targets::request(data));
}
