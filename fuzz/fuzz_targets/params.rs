//! Fuzzes the module's argument parser and rule rendering (see ../checks.rs).
#![no_main]

#[allow(dead_code)] // Each target uses one of the checks.
#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::params(data));
