//! Replays the fuzzers' inputs through the fuzz targets' own checks
//! (`fuzz/src/targets.rs`): every seed in `fuzz/seeds/<target>/`, and every
//! input that once found a bug, kept in `fuzz/regressions/<target>/`. The
//! fuzzers themselves run only from `scripts/fuzz.sh`.

use std::path::{Path, PathBuf};

#[path = "../../fuzz/src/targets.rs"]
#[allow(dead_code, reason = "shared with the fuzz crate, which uses all of it")]
mod targets;

fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(kind)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("read fuzz input directory").path())
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != ".gitkeep"))
        .collect();
    files.sort();
    files
}

fn replay(kind: &str) -> usize {
    let mut replayed = 0;
    for (target, check) in targets::TARGETS {
        for path in inputs(kind, target) {
            let data = std::fs::read(&path).expect("read fuzz input");
            eprintln!("replaying {}", path.display());
            check(&data);
            replayed += 1;
        }
    }
    replayed
}

#[test]
fn fuzz_seeds_pass_the_targets_checks() {
    let replayed = replay("seeds");
    assert!(
        replayed >= 4,
        "fuzz/seeds/ holds at least one input per target"
    );
}

#[test]
fn inputs_that_found_bugs_pass_the_targets_checks() {
    // The reply target's split length line (README, Fuzzing) is kept there.
    assert!(
        !inputs("regressions", "reply").is_empty(),
        "fuzz/regressions/reply/ lost the inputs that found the length-line bug"
    );
    let replayed = replay("regressions");
    assert!(replayed >= 3, "replayed {replayed} regression inputs");
}
