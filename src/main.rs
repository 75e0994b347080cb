//! The entry point. When argv[1] is a verb or starts with `-` (`cli::is_command`), the command
//! line goes to `cli` and its report is printed. Otherwise the Ansible binary-module protocol:
//! find the arguments (the JSON file named in argv[1], else stdin), run the module, print
//! exactly one JSON object, and exit 0 on success or 1 on failure. Firewall knowledge lives in
//! the library.

use std::io::{Read, Write};
use std::process::ExitCode;

use ufw_docker::cli;
use ufw_docker::host::RealHost;
use ufw_docker::module;
use ufw_docker::pool::Pool;

/// Small blocks are kept for reuse (src/pool.rs says why).
#[global_allocator]
static ALLOCATOR: Pool = Pool::new();

fn main() -> ExitCode {
    let first = std::env::args_os().nth(1);
    if let Some(first) = first.as_ref().and_then(|f| f.to_str()) {
        if cli::is_command(first) {
            return command();
        }
    }
    module_protocol()
}

/// A command line: parsed and run by `cli`, printed here. A closed pipe (`| head`) is not an
/// error worth a second message.
fn command() -> ExitCode {
    let args: Result<Vec<String>, _> = std::env::args_os()
        .skip(1)
        .map(|a| a.into_string())
        .collect();
    let report = match args {
        Ok(args) => {
            // SAFETY: isatty only inspects the descriptor.
            let tty = unsafe { libc::isatty(1) } == 1;
            let color = tty && std::env::var_os("NO_COLOR").is_none();
            cli::main_with(&args, &RealHost::default(), color)
        }
        Err(bad) => cli::Report {
            exit: cli::Exit::Usage,
            stdout: String::new(),
            stderr: format!(
                "ufw_docker: the argument {} is not UTF-8; give the policy's path in UTF-8\n",
                bad.to_string_lossy()
            ),
        },
    };
    let _ = std::io::stdout().write_all(report.stdout.as_bytes());
    let _ = std::io::stderr().write_all(report.stderr.as_bytes());
    ExitCode::from(report.exit.code())
}

fn module_protocol() -> ExitCode {
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
