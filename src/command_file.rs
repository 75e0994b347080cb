//! The `ufw_docker` command a run installs of itself (`command_path`, the role's
//! `/usr/local/sbin/ufw_docker`): the build that runs, which the action plugin checked by its
//! SHA-256 before it ran it, so that root never installs code it has not just verified. What
//! may be replaced at the path, whether what is there is already this build, and the words of
//! the change.
//!
//! Pure: what is at the path comes in (`host::Entry`, the bytes), decisions and text go out.
//! Reading and installing go through `Host` (`module::plan_command`, `module::install_command`).

use std::path::Path;

use crate::after_rules::sha256_hex;
use crate::host::Entry;

/// The command's mode; its owner and group are root (0).
pub const MODE: u32 = 0o755;

/// Refuses a path whose entry the module must not replace, before anything changes:
/// - a directory, since the command is a file (the path names it, not where it goes);
/// - a symbolic link, wherever it points: following it would overwrite the file it names
///   (another program, perhaps) with a root-owned executable, and replacing it would undo a
///   link someone made on purpose. Only the path's last component is looked at: a link in a
///   parent directory (`/usr/local` on another disk) is followed as any path is;
/// - anything else that is not a regular file (a FIFO, a socket, a device).
pub fn ensure_installable(path: &Path, entry: Option<&Entry>) -> Result<(), String> {
    let p = path.display();
    let what = match entry {
        None | Some(Entry::File { .. }) => return Ok(()),
        Some(Entry::Dir) => {
            format!("is a directory; give the path of the command itself (like {p}/ufw_docker)")
        }
        Some(Entry::Symlink(to)) => format!(
            "is a symbolic link to {}, which the module neither follows (it would overwrite \
             that file) nor replaces; remove the link, or set command_path to where the command \
             belongs",
            to.display()
        ),
        Some(Entry::Other) => {
            "is not a regular file (a FIFO, socket or device); remove it, or set command_path \
             elsewhere"
                .to_string()
        }
    };
    Err(format!("command_path {p} {what}. Nothing was changed."))
}

/// Whether the file there is already this build, root's, mode 0755: nothing to install.
pub fn is_current(entry: Option<&Entry>, existing: Option<&[u8]>, build: &[u8]) -> bool {
    entry
        == Some(&Entry::File {
            mode: MODE,
            uid: 0,
            gid: 0,
        })
        && existing == Some(build)
}

/// A file as the diff shows it: its SHA-256, mode and owner, on one line; `entry` `None` for
/// the command as the module installs it (root's, 0755).
pub fn describe(bytes: &[u8], entry: Option<&Entry>) -> String {
    let (mode, uid, gid) = match entry {
        Some(&Entry::File { mode, uid, gid }) => (mode, uid, gid),
        _ => (MODE, 0, 0),
    };
    format!(
        "sha256 {}, mode {mode:04o}, uid {uid}, gid {gid}\n",
        sha256_hex(bytes)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const PATH: &str = "/usr/local/sbin/ufw_docker";

    fn file(mode: u32, uid: u32) -> Entry {
        Entry::File { mode, uid, gid: 0 }
    }

    #[test]
    fn a_file_or_nothing_may_be_replaced_anything_else_is_refused_saying_why() {
        let path = Path::new(PATH);
        assert_eq!(ensure_installable(path, None), Ok(()));
        assert_eq!(ensure_installable(path, Some(&file(0o600, 1000))), Ok(()));
        for (entry, words) in [
            (
                Entry::Dir,
                "is a directory; give the path of the command itself",
            ),
            (
                Entry::Symlink(PathBuf::from("/usr/bin/python3")),
                "is a symbolic link to /usr/bin/python3, which the module neither follows",
            ),
            (Entry::Other, "is not a regular file"),
        ] {
            let msg = ensure_installable(path, Some(&entry)).unwrap_err();
            assert!(
                msg.starts_with(&format!("command_path {PATH} {words}")),
                "{msg}"
            );
            assert!(msg.ends_with(". Nothing was changed."), "{msg}");
        }
    }

    #[test]
    fn only_this_build_as_roots_0755_file_is_current() {
        let build = b"build 2";
        let root = file(MODE, 0);
        assert!(is_current(Some(&root), Some(build), build));
        assert!(
            !is_current(Some(&root), Some(b"build 1"), build),
            "another build"
        );
        assert!(!is_current(None, None, build), "nothing there");
        assert!(
            !is_current(Some(&file(0o700, 0)), Some(build), build),
            "mode"
        );
        assert!(
            !is_current(Some(&file(MODE, 1000)), Some(build), build),
            "owner"
        );
        let group = Entry::File {
            mode: MODE,
            uid: 0,
            gid: 50,
        };
        assert!(!is_current(Some(&group), Some(build), build), "group");
    }

    #[test]
    fn the_diff_names_the_build_by_its_hash_with_mode_and_owner() {
        assert_eq!(
            describe(b"abc", Some(&file(0o700, 1000))),
            "sha256 ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad, mode 0700, \
             uid 1000, gid 0\n"
        );
        assert!(describe(b"abc", None).ends_with(", mode 0755, uid 0, gid 0\n"));
    }
}
