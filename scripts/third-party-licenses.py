#!/usr/bin/env python3
"""Writes the third-party license notices of the release binary, as Markdown.

Why it exists: the ufw_docker binary is shipped (in the collection, to every managed host) with
third-party crates compiled into it, and their licenses (MIT, Apache-2.0, ...) ask that their
copyright and license texts go with it. This lists every crate linked into the release binary for
the targets it is built for, with version, license expression and source, then the full text of
each crate's license files as its package ships them; the crates that run only in the build
(proc-macros, build-script dependencies) are listed apart. scripts/licenses.sh runs it after
`cargo deny check` (`scripts/licenses.sh --list OUT`); on its own, standard library only:

    scripts/third-party-licenses.py OUT [TARGET...]

Which crates: `cargo tree -e normal,no-proc-macro --target T` is what the binary links for T;
`cargo tree -e normal,build --target T` adds what runs at build time. Dev-dependencies are never
counted. Package details and directories come from `cargo metadata`. Needs the crates fetched
(`cargo fetch`); runs offline. Fails when a crate ships no license file.
"""

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TARGETS = ["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"]
CRATES_IO = "registry+https://github.com/rust-lang/crates.io-index"
# The files of a package that carry its license: LICENSE, LICENSE-MIT, LICENCE.txt, COPYING,
# UNLICENSE, NOTICE (Apache-2.0 asks that a NOTICE goes along), any case.
LICENSE_FILE = re.compile(r"^(licen[cs]e|copying|unlicense|notice)([-._].*)?$", re.IGNORECASE)


def cargo(*args: str) -> str:
    return subprocess.run(
        ["cargo", *args], cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True
    ).stdout


def tree(target: str, edges: str) -> set[tuple[str, str]]:
    """(name, version) of every package in `cargo tree` for that target and those edge kinds."""
    out = cargo(
        "tree", "--locked", "--offline", "--target", target, "-e", edges,
        "--prefix", "none", "--format", "{p}",
    )
    found = set()
    for line in out.splitlines():
        m = re.match(r"^(\S+) v(\S+)", line)
        if m:
            found.add((m.group(1), m.group(2)))
    return found


def license_files(package: dict) -> list[Path]:
    pkg_dir = Path(package["manifest_path"]).parent
    files = {p for p in pkg_dir.iterdir() if p.is_file() and LICENSE_FILE.match(p.name)}
    if package.get("license_file"):
        files.add(pkg_dir / package["license_file"])
    return sorted(files, key=lambda p: p.name.lower())


def source(package: dict) -> str:
    if package["source"] == CRATES_IO:
        return "crates.io"
    return package["source"] or "path"


def fence(text: str) -> str:
    """A code fence longer than any run of backticks in the text."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def table(rows: list[dict]) -> list[str]:
    lines = ["| crate | version | license | source |", "|---|---|---|---|"]
    for p in rows:
        lines.append(f"| {p['name']} | {p['version']} | {p['license']} | {source(p)} |")
    return lines


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__.split("\n\n")[2], file=sys.stderr)
        return 2
    out = Path(sys.argv[1])
    targets = sys.argv[2:] or DEFAULT_TARGETS

    meta = json.loads(cargo("metadata", "--format-version", "1", "--locked", "--offline"))
    packages = {(p["name"], p["version"]): p for p in meta["packages"]}
    ours = {(p["name"], p["version"]) for p in meta["packages"] if p["source"] is None}

    linked: set[tuple[str, str]] = set()
    everything: set[tuple[str, str]] = set()
    for target in targets:
        linked |= tree(target, "normal,no-proc-macro")
        everything |= tree(target, "normal,build")
    linked -= ours
    build_only = everything - ours - linked

    def rows(keys: set[tuple[str, str]]) -> list[dict]:
        return [packages[k] for k in sorted(keys)]

    missing = [
        f"{name} {version}"
        for name, version in sorted(linked | build_only)
        if not license_files(packages[(name, version)])
    ]
    if missing:
        print(
            f"third-party-licenses: no license file in the package of {', '.join(missing)}",
            file=sys.stderr,
        )
        return 1

    lock = hashlib.sha256((ROOT / "Cargo.lock").read_bytes()).hexdigest()
    root = [p for p in meta["packages"] if p["id"] == meta["resolve"]["root"]][0]
    name = root["name"]
    built_for = " and ".join(f"`{t}`" for t in targets)
    doc = [
        f"# Third-party licenses of the {name} {root['version']} binary",
        "",
        f"The `{name}` release binary, built for {built_for},",
        f"links the {len(linked)} third-party crates below (those of all its targets together),",
        "each under the license given (an `OR` is a choice the crate's authors offer).",
        f"{name} itself is {root['license']}-licensed: see `LICENSE`. The full text of each",
        "crate's license files, as its package ships them, follows the tables.",
        "",
        f"Generated by `scripts/licenses.sh --list` from `Cargo.lock` (sha256 `{lock[:16]}...`).",
        "",
        "## Linked into the binary",
        "",
        *table(rows(linked)),
        "",
        "## Used only to build it (not linked in)",
        "",
        "Procedural macros and build-script dependencies: they run on the build machine while the",
        "binary is compiled, and no code of theirs is in it.",
        "",
        *table(rows(build_only)),
        "",
        "## License texts",
    ]
    for part, keys in (("linked", linked), ("build only", build_only)):
        for p in rows(keys):
            doc += ["", f"### {p['name']} {p['version']} ({part})", ""]
            repo = f"; repository: <{p['repository']}>" if p.get("repository") else ""
            doc.append(f"License: {p['license']}; source: {source(p)}{repo}")
            for f in license_files(p):
                text = f.read_text(encoding="utf-8", errors="replace").rstrip("\n")
                fn = fence(text)
                doc += ["", f"`{f.name}`:", "", f"{fn}text", text, fn]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(doc) + "\n", encoding="utf-8")
    print(
        f"third-party-licenses: {out}: {len(linked)} crates linked, {len(build_only)} build-only",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
