//! The lab demo (`make demo`): builds a Docker host with UFW in network namespaces, prints what
//! the internet, a trusted LAN and an untrusted neighbour can reach, applies the module, prints
//! the table again, and tears everything down.
//!
//! Usage: `cargo run --example lab -- [20|28] [nft|legacy] [MODULE]`, as root. MODULE is the
//! module binary (default: the release build).

#[path = "../tests/lab/mod.rs"]
mod lab;
#[path = "../tests/support.rs"]
mod support;

use std::path::PathBuf;

use lab::{Docker, Lab};
use support::Backend;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let docker = match args.first().map(String::as_str) {
        Some("20") => Docker::V20,
        _ => Docker::V28,
    };
    let backend = match args.get(1).map(String::as_str) {
        Some("legacy") => Backend::Legacy,
        _ => Backend::Nft,
    };
    let module = args.get(2).map(PathBuf::from).unwrap_or_else(|| {
        support::repo().join("target/x86_64-unknown-linux-musl/release/ufw_docker")
    });
    if let Err(why) = support::check_root("the lab") {
        eprintln!("{why}");
        std::process::exit(1);
    }
    lab::install_deps();
    let testsrv = lab::build_testsrv();
    println!("Starting the lab: Docker {docker:?}, iptables {backend:?}, UFW with `default deny incoming` and SSH allowed ...");
    let lab = Lab::start(docker, backend, &testsrv, &module);
    let cases = lab.cases();

    let before = lab.probe_all(&cases);
    print!(
        "{}",
        lab::table(
            "Before ufw_docker: UFW is on, yet every published port is reachable",
            &before,
            false
        )
    );

    println!("\nApplying the policy: {}", lab::policy());
    let result = lab.module(lab::policy());
    println!("ufw_docker: {}", result["msg"].as_str().unwrap_or_default());

    let after = lab.probe_all(&cases);
    print!("{}", lab::table("After ufw_docker", &after, true));
    let wrong = lab::failures(&after, true);
    drop(lab);
    println!("\nLab torn down.");
    if wrong.is_empty() {
        println!("Every row is as the policy says.");
    } else {
        println!(
            "{} rows differ from the policy:\n{}",
            wrong.len(),
            wrong.join("\n")
        );
        std::process::exit(1);
    }
}
