//! What the fuzz targets check, shared with the regression tests that replay every input the
//! fuzzer ever found (`fuzz/regressions/<target>/`, run by `cargo test`).

use ufw_docker::after_rules::{changes, find, splice, Found};
use ufw_docker::params::parse_args;
use ufw_docker::policy::desired;
use ufw_docker::rules::{restore_section, tokenize, Family};

/// Any bytes as module arguments: no panic; accepted parameters render to rules whose every
/// line is a rule, a declaration, `*filter` or `COMMIT`, and whose tokens survive quoting.
pub fn params(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(parsed) = parse_args(text) else {
        return;
    };
    for family in [Family::V4, Family::V6] {
        let set = desired(&parsed.params, family, true);
        let section = restore_section(&set, &[family.ufw_route_chain()]);
        let rules = set.docker_user.iter().chain(&set.log_chain);
        for (line, rule) in section.lines().filter(|l| l.starts_with("-A ")).zip(rules) {
            let mut want = vec!["-A".to_string(), rule.chain().to_string()];
            want.extend(rule.args().map(String::from));
            assert_eq!(
                tokenize(line),
                want,
                "a token changed through quoting: {line}"
            );
        }
        for line in section.lines() {
            assert!(
                line.starts_with("-A ")
                    || line.starts_with(':')
                    || line == "*filter"
                    || line == "COMMIT",
                "stray line {line:?}"
            );
        }
        assert_eq!(section.matches("\nCOMMIT\n").count(), 1);
    }
}

/// Any bytes as an after.rules file: no panic; when the file holds no block, adding one and
/// removing it gives the file back, and adding twice equals adding once; `changes` says whether
/// splicing changed the text.
pub fn after_rules(data: &[u8]) {
    const SECTION: &str = "*filter\n:DOCKER-USER - [0:0]\n-A DOCKER-USER -j RETURN\nCOMMIT\n";
    let Ok(found) = find(data) else {
        return;
    };
    for section in [Some(SECTION), None] {
        let spliced = splice(data, &found, section).text;
        assert_eq!(changes(data, &found, section), spliced != data);
    }
    let with = splice(data, &found, Some(SECTION)).text;
    let found_again = find(&with).expect("a file the module wrote parses");
    assert!(matches!(found_again, Found::Managed { intact: true, .. }));
    assert_eq!(splice(&with, &found_again, Some(SECTION)).text, with);
    assert!(!changes(&with, &found_again, Some(SECTION)));
    if found == Found::None {
        assert_eq!(splice(&with, &found_again, None).text, data);
    }
}
