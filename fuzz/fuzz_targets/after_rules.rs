//! Fuzzes the after.rules block finder and splicer (see ../checks.rs).
#![no_main]

#[allow(dead_code)] // Each target uses one of the checks.
#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::after_rules(data));
