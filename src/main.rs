//! The Ansible binary-module protocol, and nothing else: find the arguments (the JSON file
//! named in argv[1], else stdin), run the module, print exactly one JSON object, and exit 0 on
//! success or 1 on failure. Firewall knowledge lives in the library.

use std::io::Read;
use std::process::ExitCode;

use ufw_docker::host::RealHost;
use ufw_docker::module;

fn main() -> ExitCode {
    let outcome = match read_args() {
        Ok(text) => {
            // A panic is a bug, but it must still reach Ansible as one JSON failure.
            std::panic::set_hook(Box::new(|_| {}));
            std::panic::catch_unwind(|| module::run(&text, &RealHost::default())).unwrap_or_else(
                |panic| {
                    let what = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    module::Outcome::failure(format!(
                        "internal error in ufw_docker ({what}); nothing further was done. \
                         Please report this with the task's arguments."
                    ))
                },
            )
        }
        Err(msg) => module::Outcome::failure(msg),
    };
    println!("{}", outcome.json);
    if outcome.failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Ansible passes the path of a JSON file as the only argument; pipes and tests use stdin.
fn read_args() -> Result<String, String> {
    match std::env::args_os().nth(1) {
        Some(path) => std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "cannot read the arguments file {}: {e}",
                std::path::Path::new(&path).display()
            )
        }),
        None => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| format!("cannot read the arguments from stdin: {e}"))?;
            Ok(text)
        }
    }
}
