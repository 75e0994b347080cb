#!/usr/bin/env python3
"""Fails when the ufw_docker role's variables disagree between their three homes.

Why it exists: defaults/main.yml (the values), meta/argument_specs.yml (the types Ansible
checks) and the "Role Variables" table of ansible/README.md (what operators read) must name the
same variables; a variable missing from one of them is a bug (an unchecked or undocumented
knob). This compares the sets of names only, never the values. Run it with the venv's Python
(it needs PyYAML): .venv/bin/python scripts/check-role-vars.py
"""

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
ROLE = ROOT / "ansible" / "roles" / "ufw_docker"
DEFAULTS = ROLE / "defaults" / "main.yml"
SPECS = ROLE / "meta" / "argument_specs.yml"
README = ROOT / "ansible" / "README.md"


def from_defaults() -> set[str]:
    return set(yaml.safe_load(DEFAULTS.read_text()) or {})


def from_specs() -> set[str]:
    specs = yaml.safe_load(SPECS.read_text())
    return set(specs["argument_specs"]["main"]["options"])


def from_readme() -> set[str]:
    """The first column of the table under "## Role Variables" (up to the next "## ")."""
    text = README.read_text()
    match = re.search(r"^## Role Variables\n(.*?)(?=^## )", text, re.M | re.S)
    if not match:
        sys.exit(f"check-role-vars: {README} has no '## Role Variables' section")
    return set(re.findall(r"^\| `([a-z0-9_]+)` \|", match.group(1), re.M))


def main() -> int:
    homes = {
        str(DEFAULTS.relative_to(ROOT)): from_defaults(),
        str(SPECS.relative_to(ROOT)): from_specs(),
        str(README.relative_to(ROOT)) + " (Role Variables table)": from_readme(),
    }
    every = set().union(*homes.values())
    failed = False
    for name in sorted(every):
        missing = [home for home, names in homes.items() if name not in names]
        if missing:
            failed = True
            print(f"check-role-vars: {name} is missing from {', '.join(missing)}", file=sys.stderr)
    badly_named = sorted(n for n in every if not n.startswith("ufw_docker_"))
    for name in badly_named:
        failed = True
        print(f"check-role-vars: {name} lacks the role's prefix ufw_docker_", file=sys.stderr)
    if failed:
        print("check-role-vars: add or remove the variable in all three files together", file=sys.stderr)
        return 1
    print(f"check-role-vars: {len(every)} variables agree in defaults, argument_specs and README")
    return 0


if __name__ == "__main__":
    sys.exit(main())
