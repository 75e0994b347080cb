#!/usr/bin/env python3
"""Fails when the ufw_docker module's option list disagrees between its homes, and prints each
disagreement.

Why it exists: the options (names, types, choices, defaults, and the sub-options of ``allow``)
are written in five places, and the review found them drifting (issue 16). The reference is the
module's own table, ``OPTIONS`` in src/params.rs, which the binary's parser reads its names,
choices and defaults from. Its export, src/options.json (Ansible's argument_spec shape), is held
to the table by the Rust test ``params::tests::options_json_is_the_table`` (``cargo test
--lib``); this script compares that file with the four other homes:

  2. ARGUMENT_SPEC of ansible/plugins/module_utils/argument_spec.py (the action plugin's check
     and the documentation module's spec), imported from its file;
  3. the DOCUMENTATION of ansible/plugins/modules/ufw_docker.py (ansible-doc, Galaxy), read as
     data with ``ast`` and YAML, not imported (that needs Ansible and the collection's path);
     ansible-test's validate-modules also compares 2 and 3, but only with each other;
  4. the "Parameters" tables of README.md: ``| name | type | choices | default | meaning |``,
     the top-level options first, then one table after a line ``Each `OPTION` entry:`` per
     option with sub-options; a type is `t` or `list` of `t`, choices are `a`, `b`, a default
     is YAML in backquotes, ``required``, or empty for none;
  5. the role: ``__ufw_docker_module_args`` (vars/main.yml) must pass every option, and the role
     variable an option is passed from must be ``ufw_docker_<option>``, with the option's type,
     elements, choices, default and sub-options in meta/argument_specs.yml and its default in
     defaults/main.yml (an option passed from a fixed ``__ufw_docker_*`` variable has no role
     variable to compare). The role's own homes agree with each other by
     scripts/check-role-vars.py, whose loaders this reuses. Every task of the role that calls
     the module (tasks/main.yml, and tasks/audit.yml for the fleet audit) passes each of
     those arguments as ``OPTION: "{{ __ufw_docker_module_args.OPTION }}"``, and nothing else,
     so that the audit's "after" is what the role applies.

Compared, recursively through sub-options: the names, then ``type`` (Ansible's default: str),
``elements``, ``choices`` (in order), ``default`` (``true`` is not ``1``) and ``required``; an
argument-spec key the module's table cannot express (``aliases``, ``no_log``, ...) is a
disagreement too, since the binary would not honour it. Descriptions are not compared. Run it
with the venv's Python (PyYAML, Jinja2): .venv/bin/python scripts/check-options.py
"""

import ast
import importlib.util
import json
import re
import sys
from pathlib import Path

import yaml
from jinja2 import Environment, nodes

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "src" / "options.json"
SPEC_PY = ROOT / "ansible" / "plugins" / "module_utils" / "argument_spec.py"
MODULE_PY = ROOT / "ansible" / "plugins" / "modules" / "ufw_docker.py"
README = ROOT / "README.md"
ROLE = ROOT / "ansible" / "roles" / "ufw_docker"
ROLE_VARS = ROLE / "vars" / "main.yml"
ROLE_PREFIX = "ufw_docker_"

# The keys compared, besides the sub-options (`options` in a spec, `suboptions` in DOCUMENTATION).
COMPARED = ("type", "elements", "choices", "default", "required")
# Keys of documentation (not of the spec) that are not compared.
DOC_ONLY = {"description", "version_added", "version_added_collection"}


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _load_role_vars_check():
    spec = importlib.util.spec_from_file_location(
        "check_role_vars", ROOT / "scripts" / "check-role-vars.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def normalise(options: dict, sub_key: str, where: str, problems: list, path: str = "") -> dict:
    """OPTIONS (name -> spec in any home's spelling) in one shape: name -> {key: value} with the
    keys of COMPARED and ``options``, leaving out what Ansible treats as absent (no default,
    ``required: false``). Keys nothing else can express are reported."""
    out = {}
    for name, spec in (options or {}).items():
        spec = dict(spec or {})
        n = {"type": spec.pop("type", "str")}
        for key in COMPARED[1:]:
            if key in spec:
                n[key] = spec.pop(key)
        if n.get("required") is False:
            del n["required"]
        if n.get("default", 0) is None:
            del n["default"]
        if sub_key in spec:
            n["options"] = normalise(spec.pop(sub_key), sub_key, where, problems, f"{path}{name}.")
        for key in sorted(set(spec) - DOC_ONLY):
            problems.append(f"{where}: {path}{name}: has {key}: {show(spec[key])}, which the module's "
                            "table (src/params.rs) cannot express, so the binary does not honour it")
        out[name] = n
    return out


def show(value) -> str:
    return json.dumps(value)


def same(a, b) -> bool:
    """Equal as JSON: true is not 1, "80" is not 80."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def compare(module: dict, other: dict, where: str, path: str = "") -> list:
    """One line per difference between the module's options and another home's."""
    problems = []
    for name in module:
        if name not in other:
            problems.append(f"{where}: {path}{name} is missing (an option of the module, src/params.rs)")
    for name in other:
        if name not in module:
            problems.append(f"{where}: {path}{name} is not an option of the module (src/params.rs)")
    for name in (n for n in module if n in other):
        want, have = module[name], other[name]
        for key in COMPARED:
            if not same(want.get(key), have.get(key)):
                problems.append(
                    f"{where}: {path}{name}: {key} is "
                    f"{show(have[key]) if key in have else 'not set'}, the module's "
                    f"{show(want[key]) if key in want else 'not set'}")
        if "options" in want or "options" in have:
            if "options" not in have:
                problems.append(f"{where}: {path}{name} lists no sub-options; the module's are "
                                f"{', '.join(want['options'])}")
            elif "options" not in want:
                problems.append(f"{where}: {path}{name} lists sub-options "
                                f"({', '.join(have['options'])}); the module has none")
            else:
                problems += compare(want["options"], have["options"], where, f"{path}{name}.")
    return problems


def from_table(problems: list) -> dict:
    try:
        return normalise(json.loads(TABLE.read_text()), "options", rel(TABLE), problems)
    except (OSError, ValueError) as e:
        sys.exit(f"check-options: cannot read {rel(TABLE)} ({e}); rewrite it with "
                 "`UFW_DOCKER_WRITE_OPTIONS=1 cargo test --lib options_json`")


def from_argument_spec(problems: list) -> dict:
    spec = importlib.util.spec_from_file_location("ufw_docker_argument_spec", SPEC_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return normalise(module.ARGUMENT_SPEC, "options", rel(SPEC_PY) + " ARGUMENT_SPEC", problems)


def from_documentation(problems: list) -> dict:
    where = rel(MODULE_PY) + " DOCUMENTATION"
    for node in ast.parse(MODULE_PY.read_text()).body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "DOCUMENTATION" for t in node.targets):
            doc = yaml.safe_load(ast.literal_eval(node.value))
            return normalise(doc.get("options"), "suboptions", where, problems)
    sys.exit(f"check-options: {rel(MODULE_PY)} has no DOCUMENTATION string")


def cells(line: str) -> list:
    """The cells of a Markdown table row, split on pipes that are not escaped (``\\|``)."""
    parts = re.split(r"(?<!\\)\|", line.strip())
    return [p.strip().replace("\\|", "|") for p in parts[1:-1]]


def from_readme(problems: list) -> dict:
    where = "README.md (Parameters)"
    text = README.read_text()
    match = re.search(r"^## Parameters\n(.*?)(?=^#)", text, re.M | re.S)
    if not match:
        sys.exit("check-options: README.md has no '## Parameters' section")
    tables, rows, intro, last = [], None, None, None
    for line in match.group(1).splitlines() + [""]:
        if line.startswith("|"):
            if rows is None:
                rows, intro = [], last
            rows.append(line)
            continue
        if rows is not None:
            tables.append((intro, rows))
            rows = None
        if line.strip():
            last = line.strip()
    header = ["name", "type", "choices", "default", "meaning"]
    options, subs = None, {}
    for intro, rows in tables:
        if cells(rows[0]) != header or len(rows) < 2:
            problems.append(f"{where}: a table whose header is not | {' | '.join(header)} |: {rows[0]}")
            continue
        parsed = {}
        for row in rows[2:]:
            parsed.update(readme_row(row, where, problems))
        owner = re.fullmatch(r"Each `([a-z0-9_]+)` entry:", intro or "")
        if owner:
            subs[owner.group(1)] = parsed
        elif options is None:
            options = parsed
        else:
            problems.append(f"{where}: a second table of options without a line 'Each `OPTION` "
                            f"entry:' before it: {rows[0]}")
    if options is None:
        sys.exit("check-options: README.md's Parameters section has no table of options")
    for owner, parsed in subs.items():
        if owner in options:
            options[owner]["options"] = parsed
        else:
            problems.append(f"{where}: sub-options of {owner}, which the table does not list")
    return options


def readme_row(row: str, where: str, problems: list) -> dict:
    cols = cells(row)
    if len(cols) != 5:
        problems.append(f"{where}: a row without 5 cells: {row}")
        return {}
    name_cell, type_cell, choices_cell, default_cell, _ = cols
    name = re.fullmatch(r"`([a-z0-9_]+)`", name_cell)
    if not name:
        problems.append(f"{where}: a row whose name is not `name`: {row}")
        return {}
    name = name.group(1)
    spec = {}
    typ = re.fullmatch(r"`([a-z]+)`(?: of `([a-z]+)`)?", type_cell)
    if typ:
        spec["type"] = typ.group(1)
        if typ.group(2):
            spec["elements"] = typ.group(2)
    else:
        problems.append(f"{where}: {name}: cannot read the type {type_cell!r} (`t` or `list` of `t`)")
    if choices_cell:
        if re.fullmatch(r"`[^`]+`(?:, `[^`]+`)*", choices_cell):
            spec["choices"] = re.findall(r"`([^`]+)`", choices_cell)
        else:
            problems.append(f"{where}: {name}: cannot read the choices {choices_cell!r} (`a`, `b`)")
    if default_cell == "required":
        spec["required"] = True
    elif default_cell:
        value = re.fullmatch(r"`([^`]*)`", default_cell)
        if value:
            spec["default"] = yaml.safe_load(value.group(1))
        else:
            problems.append(f"{where}: {name}: cannot read the default {default_cell!r} (YAML in "
                            "backquotes, required, or empty for none)")
    return {name: spec}


def from_role(module: dict, problems: list) -> tuple:
    """The role's options under the module's names, for the options it passes from a role
    variable; their defaults from defaults/main.yml; and the options it passes fixed values."""
    role_vars = _load_role_vars_check()
    where_vars = rel(ROLE_VARS) + " __ufw_docker_module_args"
    where_specs = rel(role_vars.SPECS)
    args = (yaml.safe_load(ROLE_VARS.read_text()) or {}).get("__ufw_docker_module_args") or {}
    specs = role_vars.spec_options()
    defaults = role_vars.from_defaults()
    env = Environment()
    options, values, fixed = {}, {}, []
    for name in module:
        if name not in args:
            problems.append(f"{where_vars}: does not pass {name} (an option of the module, "
                            "src/params.rs)")
    for name, template in args.items():
        if name not in module:
            problems.append(f"{where_vars}: passes {name}, which is not an option of the module "
                            "(src/params.rs)")
            continue
        # The variables the template reads, from Jinja's parse tree (not compiled: Ansible's
        # filters are not Jinja's).
        used = sorted({n.name for n in env.parse(str(template)).find_all(nodes.Name)})
        mine = [v for v in used if v.startswith(ROLE_PREFIX)]
        if not mine:
            fixed.append(name)
            continue
        var = ROLE_PREFIX + name
        if mine != [var]:
            problems.append(f"{where_vars}: passes {name} from {', '.join(mine)}; the role "
                            f"variable of option {name} is {var}")
            continue
        if var not in specs:
            problems.append(f"{where_specs}: {var} is missing (the role passes it as {name})")
            continue
        options[name] = specs[var]
        if var in defaults:
            values[name] = defaults[var]
    got = normalise(options, "options", where_specs, problems, ROLE_PREFIX)
    return got, values, fixed


MODULE_FQCN = "ufw_docker.ufw_docker.ufw_docker"


def from_role_tasks(problems: list) -> int:
    """Checks every task of the role's tasks/*.yml that calls the module: its arguments must be
    exactly __ufw_docker_module_args, each passed through. Returns the number of such tasks."""
    args = (yaml.safe_load(ROLE_VARS.read_text()) or {}).get("__ufw_docker_module_args") or {}
    want = {name: "{{ __ufw_docker_module_args.%s }}" % name for name in args}
    found = 0

    def tasks(items):
        for task in items or []:
            if not isinstance(task, dict):
                continue
            yield task
            for key in ("block", "rescue", "always"):
                yield from tasks(task.get(key))

    for path in sorted((ROLE / "tasks").glob("*.yml")):
        for task in tasks(yaml.safe_load(path.read_text())):
            if MODULE_FQCN not in task:
                continue
            found += 1
            got = task[MODULE_FQCN] or {}
            where = f"{rel(path)} '{task.get('name', MODULE_FQCN)}'"
            for name in sorted(set(want) | set(got)):
                if got.get(name) != want.get(name):
                    problems.append(f"{where}: passes {name}: {got.get(name)!r}, not "
                                    f"{want.get(name)!r} (every module task of the role passes "
                                    "__ufw_docker_module_args, each option through)")
    if not found:
        problems.append(f"{rel(ROLE / 'tasks')}: no task calls {MODULE_FQCN}")
    return found


def main() -> int:
    problems = []
    module = from_table(problems)
    homes = {
        rel(SPEC_PY) + " ARGUMENT_SPEC": from_argument_spec(problems),
        rel(MODULE_PY) + " DOCUMENTATION": from_documentation(problems),
        "README.md (Parameters)": from_readme(problems),
    }
    for where, options in homes.items():
        problems += compare(module, options, where)

    role, values, fixed = from_role(module, problems)
    where_specs = rel(ROLE / "meta" / "argument_specs.yml")
    problems += compare({n: module[n] for n in role}, role, where_specs, ROLE_PREFIX)
    for name, value in values.items():
        want = module[name].get("default")
        if not same(value, want):
            problems.append(f"{rel(ROLE / 'defaults' / 'main.yml')}: {ROLE_PREFIX}{name} is "
                            f"{show(value)}, the module's default "
                            f"{show(want) if 'default' in module[name] else 'not set'}")

    module_tasks = from_role_tasks(problems)

    for problem in problems:
        print(f"check-options: {problem}", file=sys.stderr)
    if problems:
        print("check-options: the module's options are OPTIONS in src/params.rs; change the "
              "option in every home together (src/options.json: `UFW_DOCKER_WRITE_OPTIONS=1 "
              "cargo test --lib options_json`)", file=sys.stderr)
        return 1
    subs = sum(len(o.get("options", {})) for o in module.values())
    print(f"check-options: {len(module)} options and {subs} sub-options agree in src/params.rs "
          f"(src/options.json), argument_spec.py, DOCUMENTATION, README.md and the role "
          f"({len(role)} passed from role variables, {', '.join(fixed) or 'none'} fixed by the "
          f"role; {module_tasks} module tasks of the role pass them all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
