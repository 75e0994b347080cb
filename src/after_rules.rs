//! Finding, adopting and splicing the managed block in the text of an after.rules file.
//!
//! Pure bytes in, bytes out: the file may hold any bytes (CRLF, no trailing newline, non-UTF-8
//! comments), and everything outside the markers is kept byte for byte. The BEGIN marker carries
//! a sha256 of the block's body so a hand edit is noticed. A block left by the ufw-docker shell
//! script (`# BEGIN UFW AND DOCKER` ... `# END UFW AND DOCKER`) is adopted: replaced by ours.
//! Unbalanced or repeated markers are an error, so nothing is written over a file whose
//! structure the module cannot be sure of.

use std::fmt;
use std::ops::Range;

use sha2::{Digest, Sha256};

/// Start of the module's BEGIN marker line; the rest of the line holds its fields.
pub const BEGIN: &str = "# BEGIN UFW-DOCKER MANAGED BLOCK";
/// The module's END marker line.
pub const END: &str = "# END UFW-DOCKER MANAGED BLOCK";
/// The ufw-docker script's markers, adopted when found.
pub const LEGACY_BEGIN: &str = "# BEGIN UFW AND DOCKER";
pub const LEGACY_END: &str = "# END UFW AND DOCKER";
/// Flag on the BEGIN marker: the module added the newline before it because the file did not
/// end with one, so removing the block removes that newline too.
const NEWLINE_FLAG: &str = "newline-added";
/// First line of the block body, for whoever opens the file.
const NOTICE: &str =
    "# Managed by the ufw_docker Ansible module. Hand edits are detected and replaced.";

/// Which kind of marker a line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    Begin,
    End,
    LegacyBegin,
    LegacyEnd,
}

/// A structural problem with the markers in a file; the task fails and nothing is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockError {
    /// A BEGIN marker with no END after it.
    UnclosedBegin { line: usize },
    /// An END marker with no BEGIN before it.
    StrayEnd { line: usize },
    /// A BEGIN while another block is open, or a block closed by the other kind's END.
    Mismatched { line: usize },
    /// More than one managed or adopted block.
    Duplicate { first: usize, second: usize },
}

impl fmt::Display for BlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockError::UnclosedBegin { line } => write!(
                f,
                "line {line} opens a managed block that is never closed; add the END marker \
                 or remove the BEGIN line by hand"
            ),
            BlockError::StrayEnd { line } => write!(
                f,
                "line {line} closes a managed block that was never opened; remove the stray \
                 END marker by hand"
            ),
            BlockError::Mismatched { line } => write!(
                f,
                "line {line} has a block marker that does not match the open block; fix the \
                 markers by hand"
            ),
            BlockError::Duplicate { first, second } => write!(
                f,
                "the file holds two managed blocks (lines {first} and {second}); keep one and \
                 remove the other by hand"
            ),
        }
    }
}

/// The block found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    None,
    /// The module's own block.
    Managed {
        /// Byte range from the start of the BEGIN line to the end of the END line's newline.
        span: Range<usize>,
        /// Whether the body still matches the sha256 in its BEGIN marker.
        intact: bool,
        /// Whether the module added the newline just before the block.
        newline_added: bool,
    },
    /// The ufw-docker script's block, to be adopted.
    Legacy {
        span: Range<usize>,
    },
}

/// Splits text into lines, each with its terminator, and the byte offset where it starts.
fn lines(text: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut start = 0;
    std::iter::from_fn(move || {
        if start >= text.len() {
            return None;
        }
        let end = text[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(text.len(), |i| start + i + 1);
        let item = (start, &text[start..end]);
        start = end;
        Some(item)
    })
}

/// The line without its `\n` or `\r\n` terminator.
fn content(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn classify(line: &[u8]) -> Option<Marker> {
    let c = content(line);
    let trimmed = c.trim_ascii();
    let ours = c
        .strip_prefix(BEGIN.as_bytes())
        .is_some_and(|rest| rest.is_empty() || rest[0] == b' ');
    if ours {
        Some(Marker::Begin)
    } else if trimmed == END.as_bytes() {
        Some(Marker::End)
    } else if trimmed == LEGACY_BEGIN.as_bytes() {
        Some(Marker::LegacyBegin)
    } else if trimmed == LEGACY_END.as_bytes() {
        Some(Marker::LegacyEnd)
    } else {
        None
    }
}

/// Finds the one block in `text`, or says why the markers cannot be trusted.
pub fn find(text: &[u8]) -> Result<Found, BlockError> {
    let mut open: Option<(Marker, usize, usize, &[u8])> = None; // kind, line no, offset, line
    let mut found: Option<(Found, usize)> = None;
    for (number, (offset, line)) in lines(text).enumerate() {
        let number = number + 1;
        let Some(marker) = classify(line) else {
            continue;
        };
        match (marker, open) {
            (Marker::Begin | Marker::LegacyBegin, None) => {
                open = Some((marker, number, offset, line))
            }
            (Marker::Begin | Marker::LegacyBegin, Some(_)) => {
                return Err(BlockError::Mismatched { line: number })
            }
            (Marker::End | Marker::LegacyEnd, None) => {
                return Err(BlockError::StrayEnd { line: number })
            }
            (end, Some((begin, begin_no, begin_off, begin_line))) => {
                let span = begin_off..offset + line.len();
                let block = match (begin, end) {
                    (Marker::Begin, Marker::End) => {
                        let body = &text[begin_off + begin_line.len()..offset];
                        let fields = parse_begin_fields(begin_line);
                        Found::Managed {
                            span,
                            intact: fields.sha256.as_deref() == Some(sha256_hex(body).as_str()),
                            newline_added: fields.newline_added,
                        }
                    }
                    (Marker::LegacyBegin, Marker::LegacyEnd) => Found::Legacy { span },
                    _ => return Err(BlockError::Mismatched { line: number }),
                };
                if let Some((_, first)) = found {
                    return Err(BlockError::Duplicate {
                        first,
                        second: begin_no,
                    });
                }
                found = Some((block, begin_no));
                open = None;
            }
        }
    }
    if let Some((_, line, _, _)) = open {
        return Err(BlockError::UnclosedBegin { line });
    }
    Ok(found.map_or(Found::None, |(f, _)| f))
}

struct BeginFields {
    sha256: Option<String>,
    newline_added: bool,
}

fn parse_begin_fields(line: &[u8]) -> BeginFields {
    let rest = &content(line)[BEGIN.len()..];
    let rest = String::from_utf8_lossy(rest);
    let mut fields = BeginFields {
        sha256: None,
        newline_added: false,
    };
    for word in rest.split_ascii_whitespace() {
        if let Some(hex) = word.strip_prefix("sha256=") {
            fields.sha256 = Some(hex.to_string());
        } else if word == NEWLINE_FLAG {
            fields.newline_added = true;
        }
    }
    fields
}

/// The SHA-256 of `bytes`, in lowercase hex (also how `command_file` names a build).
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The BEGIN line of the block holding `section`: its body's sha256, and the flag saying the
/// module added the newline before it.
fn begin_line(section: &str, newline_added: bool) -> String {
    let digest = Sha256::new()
        .chain_update(NOTICE)
        .chain_update("\n")
        .chain_update(section)
        .finalize();
    let mut line = format!("{BEGIN} sha256=");
    for b in digest {
        line.push_str(&format!("{b:02x}"));
    }
    if newline_added {
        line.push(' ');
        line.push_str(NEWLINE_FLAG);
    }
    line.push('\n');
    line
}

/// What splicing did to the text, for the result's warnings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spliced {
    pub text: Vec<u8>,
    /// The block was the ufw-docker script's and has been replaced or removed.
    pub adopted_legacy: bool,
    /// The managed block had been edited by hand.
    pub hand_edited: bool,
}

impl Found {
    /// The module's block, edited by hand since it was written: splicing replaces the edit.
    pub fn hand_edited(&self) -> bool {
        matches!(self, Found::Managed { intact: false, .. })
    }

    /// The ufw-docker script's block: splicing adopts it (replaces or removes it).
    pub fn is_legacy(&self) -> bool {
        matches!(self, Found::Legacy { .. })
    }
}

/// How the spliced text is made from the old one: the text before the block, a newline the
/// module adds where the file did not end with one, the block (its section and whether the
/// module added that newline), and the text after it.
struct Layout<'a> {
    before: &'a [u8],
    newline: bool,
    block: Option<(&'a str, bool)>,
    after: &'a [u8],
}

fn layout<'a>(text: &'a [u8], found: &Found, section: Option<&'a str>) -> Layout<'a> {
    match found {
        Found::None => {
            let newline = section.is_some() && !text.is_empty() && !text.ends_with(b"\n");
            Layout {
                before: text,
                newline,
                block: section.map(|s| (s, newline)),
                after: &[],
            }
        }
        Found::Managed {
            span,
            newline_added,
            ..
        } => {
            let mut start = span.start;
            if section.is_none() && *newline_added && start > 0 && text[start - 1] == b'\n' {
                start -= 1;
            }
            Layout {
                before: &text[..start],
                newline: false,
                block: section.map(|s| (s, *newline_added)),
                after: &text[span.end..],
            }
        }
        Found::Legacy { span } => Layout {
            before: &text[..span.start],
            newline: false,
            block: section.map(|s| (s, false)),
            after: &text[span.end..],
        },
    }
}

impl Layout<'_> {
    /// Hands each piece of the spliced text to `piece` in order, until it returns false;
    /// returns whether every piece was taken.
    fn pieces(&self, mut piece: impl FnMut(&[u8]) -> bool) -> bool {
        let begin = self.block.map(|(s, added)| begin_line(s, added));
        piece(self.before)
            && (!self.newline || piece(b"\n"))
            && self.block.is_none_or(|(section, _)| {
                let notice = [NOTICE.as_bytes(), b"\n"];
                let end = [END.as_bytes(), b"\n"];
                [begin.as_deref().unwrap_or_default().as_bytes()]
                    .into_iter()
                    .chain(notice)
                    .chain([section.as_bytes()])
                    .chain(end)
                    .all(&mut piece)
            })
            && piece(self.after)
    }
}

/// The file text with the block holding `section` in place (`Some`) or removed (`None`).
pub fn splice(text: &[u8], found: &Found, section: Option<&str>) -> Spliced {
    let mut out = Vec::with_capacity(text.len() + section.map_or(0, str::len) + 256);
    layout(text, found, section).pieces(|p| {
        out.extend_from_slice(p);
        true
    });
    Spliced {
        text: out,
        adopted_legacy: found.is_legacy(),
        hand_edited: found.hand_edited(),
    }
}

/// Whether splicing changes the text (`splice(text, found, section).text != text`), found by
/// comparing its pieces with the text in place: a run that changes nothing never builds a
/// second copy of a file that holds a thousand entries.
pub fn changes(text: &[u8], found: &Found, section: Option<&str>) -> bool {
    let mut rest = text;
    let same = layout(text, found, section).pieces(|p| match rest.strip_prefix(p) {
        Some(r) => {
            rest = r;
            true
        }
        None => false,
    });
    !(same && rest.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECTION: &str = "*filter\n:DOCKER-USER - [0:0]\n-A DOCKER-USER -j RETURN\nCOMMIT\n";
    const OTHER: &str = "*filter\n:DOCKER-USER - [0:0]\n-A DOCKER-USER -j DROP\nCOMMIT\n";
    const UFW_AFTER: &[u8] = include_bytes!("../tests/data/after.rules");
    const LEGACY: &[u8] = include_bytes!("../tests/data/after.rules.legacy-block");

    fn present(text: &[u8], section: &str) -> Vec<u8> {
        splice(text, &find(text).unwrap(), Some(section)).text
    }

    fn absent(text: &[u8]) -> Vec<u8> {
        splice(text, &find(text).unwrap(), None).text
    }

    #[test]
    fn present_then_absent_restores_the_file_byte_for_byte() {
        for original in [
            UFW_AFTER,
            b"" as &[u8],
            b"no trailing newline",
            b"crlf\r\nfile\r\n",
            b"\xff\xfe binary \x00 bytes\n",
        ] {
            let with = present(original, SECTION);
            assert_ne!(with, original);
            assert_eq!(
                absent(&with),
                original,
                "{:?}",
                String::from_utf8_lossy(original)
            );
        }
    }

    #[test]
    fn present_is_idempotent_and_replaces_in_place() {
        let once = present(UFW_AFTER, SECTION);
        assert_eq!(present(&once, SECTION), once);
        let mut edited = once.clone();
        edited.extend_from_slice(b"# operator's line after the block\n");
        let changed = present(&edited, OTHER);
        assert!(changed.starts_with(UFW_AFTER));
        assert!(changed.ends_with(b"# operator's line after the block\n"));
        assert!(String::from_utf8_lossy(&changed).contains("-j DROP"));
        assert_eq!(
            absent(&changed),
            [UFW_AFTER, b"# operator's line after the block\n"].concat()
        );
    }

    #[test]
    fn changes_says_whether_the_spliced_text_differs_without_building_it() {
        let once = present(UFW_AFTER, SECTION);
        let crlf_end = String::from_utf8(once.clone())
            .unwrap()
            .replace(&format!("{END}\n"), &format!("{END}\r\n"));
        let edited = String::from_utf8(once.clone())
            .unwrap()
            .replace("-j RETURN\nCOMMIT", "-j ACCEPT\nCOMMIT");
        for text in [
            UFW_AFTER,
            b"" as &[u8],
            b"no trailing newline",
            &once,
            crlf_end.as_bytes(),
            edited.as_bytes(),
            LEGACY,
        ] {
            let found = find(text).unwrap();
            for section in [Some(SECTION), Some(OTHER), None] {
                let spliced = splice(text, &found, section).text;
                assert_eq!(
                    changes(text, &found, section),
                    spliced != text,
                    "{section:?} into {:?}",
                    String::from_utf8_lossy(text)
                );
            }
        }
        assert!(!changes(&once, &find(&once).unwrap(), Some(SECTION)));
        assert!(changes(
            crlf_end.as_bytes(),
            &find(crlf_end.as_bytes()).unwrap(),
            Some(SECTION)
        ));
    }

    #[test]
    fn the_block_is_appended_after_ufws_own_commit() {
        let text = String::from_utf8(present(UFW_AFTER, SECTION)).unwrap();
        let ufw_commit = text.find("COMMIT").unwrap();
        assert!(text.find(BEGIN).unwrap() > ufw_commit);
        assert!(text.ends_with(&format!("{END}\n")));
    }

    #[test]
    fn hand_edits_are_detected() {
        let with = present(UFW_AFTER, SECTION);
        let found = find(&with).unwrap();
        assert!(matches!(found, Found::Managed { intact: true, .. }));
        let edited = String::from_utf8(with).unwrap().replace(
            "-j RETURN\nCOMMIT",
            "-j RETURN\n-A DOCKER-USER -j ACCEPT\nCOMMIT",
        );
        let found = find(edited.as_bytes()).unwrap();
        assert!(matches!(found, Found::Managed { intact: false, .. }));
        let spliced = splice(edited.as_bytes(), &found, Some(SECTION));
        assert!(spliced.hand_edited);
        assert_eq!(spliced.text, present(UFW_AFTER, SECTION));
    }

    #[test]
    fn a_legacy_script_block_is_adopted_in_place() {
        let found = find(LEGACY).unwrap();
        assert!(matches!(found, Found::Legacy { .. }));
        let spliced = splice(LEGACY, &found, Some(SECTION));
        assert!(spliced.adopted_legacy);
        let text = String::from_utf8(spliced.text).unwrap();
        assert!(!text.contains(LEGACY_BEGIN) && !text.contains("192.168.0.0/16"));
        assert!(text.contains(BEGIN));
        // What preceded and followed the legacy block is untouched.
        let legacy = String::from_utf8_lossy(LEGACY);
        let before = &legacy[..legacy.find(LEGACY_BEGIN).unwrap()];
        assert!(text.starts_with(before));
        let removed = String::from_utf8(absent(LEGACY)).unwrap();
        assert!(!removed.contains("UFW AND DOCKER"));
        assert!(removed.starts_with(before));
    }

    #[test]
    fn broken_markers_are_errors() {
        let begin = format!("{BEGIN} sha256=00\n");
        let end = format!("{END}\n");
        let cases: Vec<(String, BlockError)> = vec![
            (
                format!("a\n{begin}x\n"),
                BlockError::UnclosedBegin { line: 2 },
            ),
            (end.to_string(), BlockError::StrayEnd { line: 1 }),
            (
                format!("{begin}{begin}{end}"),
                BlockError::Mismatched { line: 2 },
            ),
            (
                format!("{begin}{LEGACY_END}\n"),
                BlockError::Mismatched { line: 2 },
            ),
            (
                format!("{begin}{end}x\n{LEGACY_BEGIN}\n{LEGACY_END}\n"),
                BlockError::Duplicate {
                    first: 1,
                    second: 4,
                },
            ),
            (
                format!("{LEGACY_BEGIN}\nx\n"),
                BlockError::UnclosedBegin { line: 1 },
            ),
        ];
        for (text, want) in cases {
            assert_eq!(find(text.as_bytes()), Err(want), "{text:?}");
        }
    }

    #[test]
    fn marker_like_lines_that_are_not_markers_are_plain_text() {
        let text = b"## BEGIN UFW AND DOCKER\n# BEGIN UFW AND DOCKER please\n  # END UFW-DOCKER MANAGED BLOCK trailing\n";
        assert_eq!(find(text), Ok(Found::None));
        let with = present(text, SECTION);
        assert_eq!(absent(&with), text);
    }

    #[test]
    fn crlf_markers_are_recognised() {
        let with = present(b"x\r\n", SECTION);
        let crlf = String::from_utf8(with).unwrap().replace('\n', "\r\n");
        assert!(matches!(
            find(crlf.as_bytes()),
            Ok(Found::Managed { intact: false, .. })
        ));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Lines an operator's after.rules may hold, including ones that look like markers
        /// without being markers.
        fn line() -> impl Strategy<Value = Vec<u8>> {
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..80),
                "[ -~]{0,60}".prop_map(String::into_bytes),
                Just(b"*filter".to_vec()),
                Just(b"COMMIT".to_vec()),
                Just(b"# BEGIN UFW AND DOCKER please keep".to_vec()),
                Just(b" # BEGIN UFW-DOCKER MANAGED BLOCK".to_vec()),
                Just(b"# BEGIN UFW-DOCKER MANAGED BLOCKS".to_vec()),
                Just(b"## END UFW-DOCKER MANAGED BLOCK".to_vec()),
                Just(b"# END UFW AND DOCKER, said nobody".to_vec()),
                (5000usize..20000).prop_map(|n| vec![b'x'; n]),
            ]
            .prop_map(|mut l| {
                l.retain(|&b| b != b'\n');
                l
            })
        }

        /// A file: lines joined by LF or CRLF, with or without a final newline.
        fn file() -> impl Strategy<Value = Vec<u8>> {
            (
                proptest::collection::vec((line(), any::<bool>()), 0..30),
                any::<bool>(),
            )
                .prop_map(|(lines, trailing)| {
                    let mut out = Vec::new();
                    let n = lines.len();
                    for (i, (l, crlf)) in lines.into_iter().enumerate() {
                        out.extend(l);
                        if i + 1 < n || trailing {
                            out.extend(if crlf { &b"\r\n"[..] } else { &b"\n"[..] });
                        }
                    }
                    out
                })
                .prop_filter("no real markers", |f| matches!(find(f), Ok(Found::None)))
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(300))]

            #[test]
            fn present_then_absent_is_the_original(original in file()) {
                let with = present(&original, SECTION);
                prop_assert_eq!(absent(&with), original);
            }

            #[test]
            fn changes_is_whether_splicing_changed_the_text(original in file()) {
                let once = present(&original, SECTION);
                for text in [&original, &once] {
                    let found = find(text).unwrap();
                    for section in [Some(SECTION), Some(OTHER), None] {
                        let spliced = splice(text, &found, section).text;
                        prop_assert_eq!(changes(text, &found, section), &spliced != text);
                    }
                }
            }

            #[test]
            fn present_twice_equals_present_once(original in file()) {
                let once = present(&original, SECTION);
                prop_assert_eq!(present(&once, SECTION), once.clone());
                prop_assert_eq!(present(&once, OTHER), present(&original, OTHER));
            }

            #[test]
            fn text_outside_the_block_never_changes(original in file()) {
                let with = present(&original, SECTION);
                prop_assert!(with.starts_with(&original));
                let added = &with[original.len()..];
                let block_start = if !original.is_empty() && !original.ends_with(b"\n") {
                    prop_assert_eq!(added[0], b'\n');
                    1
                } else {
                    0
                };
                prop_assert!(added[block_start..].starts_with(BEGIN.as_bytes()));
                let end_line = format!("{}\n", END);
                prop_assert!(added.ends_with(end_line.as_bytes()));
            }

            #[test]
            fn find_never_panics_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
                let _ = find(&bytes);
            }
        }
    }
}
