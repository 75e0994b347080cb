//! Replays every input kept from fuzzing (`fuzz/regressions/<target>/`, where `make fuzz` puts
//! anything that crashed) and the fuzz seeds through the same checks the fuzz targets run.

#[allow(dead_code)] // Both checks are used here; each fuzz target uses one.
#[path = "../fuzz/checks.rs"]
mod checks;

use std::fs;
use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut n = 0;
    for dir in ["regressions", "seeds"] {
        let Ok(entries) = fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_name() == ".gitkeep" {
                continue;
            }
            let data = fs::read(entry.path()).unwrap();
            check(&data);
            n += 1;
        }
    }
    n
}

#[test]
fn fuzz_inputs_for_the_argument_parser_stay_fixed() {
    assert!(replay("params", checks::params) >= 2, "the seeds are there");
}

#[test]
fn fuzz_inputs_for_the_after_rules_parser_stay_fixed() {
    assert!(
        replay("after_rules", checks::after_rules) >= 3,
        "the seeds are there"
    );
}
