//! AFL++ entry point; the checks live in `sealcache_fuzz::targets::envelope`.
fn main() {
    afl::fuzz!(|data: &[u8]| sealcache_fuzz::targets::envelope(data));
}
