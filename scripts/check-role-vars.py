#!/usr/bin/env python3
"""Fails when the ufw_docker role's variables disagree between their three homes.

Why it exists: defaults/main.yml (the values), meta/argument_specs.yml (the types and defaults
Ansible checks and ansible-doc shows) and the "Role Variables" table of the role's README.md
(what operators read) must name the same variables with the same defaults; a variable missing
from one of them is an unchecked or undocumented knob, and a default that differs misleads. A
templated default (``{{ ... }}``) cannot be a literal in argument_specs: there it must have no
``default`` and the README must show the template. Run it with the venv's Python (it needs
PyYAML): .venv/bin/python scripts/check-role-vars.py
"""

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
ROLE = ROOT / "ansible" / "roles" / "ufw_docker"
DEFAULTS = ROLE / "defaults" / "main.yml"
SPECS = ROLE / "meta" / "argument_specs.yml"
README = ROLE / "README.md"

ABSENT = object()


def from_defaults() -> dict:
    return yaml.safe_load(DEFAULTS.read_text()) or {}


def spec_options() -> dict:
    """The options of the role's entry point, as meta/argument_specs.yml has them (also read by
    scripts/check-options.py)."""
    specs = yaml.safe_load(SPECS.read_text())
    return specs["argument_specs"]["main"]["options"]


def from_specs() -> dict:
    return {name: spec.get("default", ABSENT) for name, spec in spec_options().items()}


def from_readme() -> dict:
    """The first two columns of the table under "## Role Variables" (up to the next "## "): the
    name, and the default as YAML in backquotes (a `|` written `\\|` inside the table)."""
    text = README.read_text()
    match = re.search(r"^## Role Variables\n(.*?)(?=^## )", text, re.M | re.S)
    if not match:
        sys.exit(f"check-role-vars: {README} has no '## Role Variables' section")
    rows = re.findall(r"^\| `([a-z0-9_]+)` \| `((?:[^`]|\\\|)*)` \|", match.group(1), re.M)
    return {name: yaml.safe_load(cell.replace("\\|", "|")) for name, cell in rows}


def templated(value) -> bool:
    return isinstance(value, str) and "{{" in value


def main() -> int:
    defaults, specs, readme = from_defaults(), from_specs(), from_readme()
    homes = {
        str(DEFAULTS.relative_to(ROOT)): defaults,
        str(SPECS.relative_to(ROOT)): specs,
        str(README.relative_to(ROOT)) + " (Role Variables table)": readme,
    }
    every = set().union(*homes.values())
    problems = []
    for name in sorted(every):
        missing = [home for home, names in homes.items() if name not in names]
        if missing:
            problems.append(f"{name} is missing from {', '.join(missing)}")
            continue
        value = defaults[name]
        if readme[name] != value:
            problems.append(f"{name}: the README says {readme[name]!r}, defaults/main.yml {value!r}")
        if templated(value):
            if specs[name] is not ABSENT:
                problems.append(f"{name}: defaults/main.yml computes {value!r}; argument_specs "
                                f"must not claim the literal default {specs[name]!r}")
        elif specs[name] is ABSENT or specs[name] != value:
            shown = "none" if specs[name] is ABSENT else repr(specs[name])
            problems.append(f"{name}: argument_specs says default {shown}, defaults/main.yml {value!r}")
    problems += [f"{n} lacks the role's prefix ufw_docker_" for n in sorted(every)
                 if not n.startswith("ufw_docker_")]
    for problem in problems:
        print(f"check-role-vars: {problem}", file=sys.stderr)
    if problems:
        print("check-role-vars: change the variable in all three files together", file=sys.stderr)
        return 1
    print(f"check-role-vars: {len(every)} variables agree in defaults, argument_specs and README "
          "(names and defaults)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
