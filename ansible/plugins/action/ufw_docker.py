# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ufw-docker contributors
# MIT License (see LICENSE in the collection's root or https://opensource.org/licenses/MIT)
"""Runs the static build of the ufw_docker module that matches the managed host's CPU, after
checking its SHA-256, in one SSH round trip when the host already holds that build.

Why it exists: the module is one static executable per architecture
(``binaries/ufw_docker-x86_64`` and ``binaries/ufw_docker-aarch64`` in this collection;
``plugins/modules/ufw_docker.py`` holds only its documentation and argument spec), while a task
should say ``ufw_docker`` whatever the host is. This action plugin, which Ansible runs for every
``ufw_docker`` task, picks the build by the host's architecture. Check mode, diff mode and the
arguments pass through untouched. It checks the options and their types against the module's
argument spec (plugins/module_utils/argument_spec.py) before anything reaches the host; the
values' own rules belong to the binary. ``state: absent`` also removes the cache below.

Root runs only code it has just verified. The host keeps the build in ``/var/cache/ufw-docker``
(root's, mode 0700), named by its SHA-256. One shell command, run as root (become), finds the
architecture (``uname -m``, or the gathered fact), checks the cached build's hash with
``sha256sum`` and runs it. Only when the build is missing, stale or damaged does the plugin send
it, in a second round trip: on the command's standard input, ahead of the arguments, which root
writes straight into its own directory. Where standard input cannot reach root (see below), the
plugin copies the build to the remote user's temporary directory instead, and root copies it
into its own directory (two more round trips). Either way root checks its copy's hash and runs
that copy, never a file the remote user could still change. A dry run (check mode) caches
nothing. An unknown architecture fails before anything is copied.

The arguments reach the build on its standard input (the connection's ``in_data``, as Ansible's
pipelining sends a module), never on a command line that other local users can read in ``ps``.
Where the connection cannot send standard input (``su`` become, a connection without
pipelining), they go as a file in the remote user's private (0700) temporary directory, as
Ansible's own module runs do.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shlex

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible.vars.clean import remove_internal_keys
from ansible_collections.ufw_docker.ufw_docker.plugins.module_utils.argument_spec import ARGUMENT_SPEC

try:  # ansible-core 2.19 and later
    from ansible.module_utils.common.json import Direction, get_module_encoder

    def _encode_args(args):
        return json.dumps(args, cls=get_module_encoder('legacy', Direction.CONTROLLER_TO_MODULE))

except ImportError:  # pragma: no cover - older ansible-core
    from ansible.module_utils.common.json import AnsibleJSONEncoder

    def _encode_args(args):
        return json.dumps(args, cls=AnsibleJSONEncoder)


display = Display()

MODULE = 'ufw_docker.ufw_docker.ufw_docker'

# `uname -m` spellings (and the fact's) of each supported CPU, to the architecture of its build.
ARCHES = {
    'x86_64': 'x86_64',
    'amd64': 'x86_64',
    'aarch64': 'aarch64',
    'arm64': 'aarch64',
}

# The builds, in the collection's binaries/ (two directories above this file's plugins/action/).
BIN_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'binaries')

CACHE_DIR = '/var/cache/ufw-docker'

MISS = 'UFW_DOCKER_CACHE_MISS'
UNKNOWN_ARCH = 'UFW_DOCKER_UNKNOWN_ARCH'
BAD_COPY = 'UFW_DOCKER_BAD_COPY'
SETUP_FAILED = 'UFW_DOCKER_SETUP_FAILED'

# Hash of each build on the controller, by (path, size, mtime): read once per controller process.
_DIGESTS = {}


def build_path(arch):
    """The controller's build for ARCH (a value of ARCHES)."""
    return os.path.join(BIN_DIR, 'ufw_docker-' + arch)


def _digest(path):
    st = os.stat(path)
    key = (path, st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        with open(path, 'rb') as f:
            _DIGESTS[key] = hashlib.sha256(f.read()).hexdigest()
    return _DIGESTS[key]


def _marker(res, marker):
    """What follows MARKER on a line of its own in the command's output, or None. The marker may
    come after other lines: a login shell's start-up files can print anything first, as they can
    before a module's JSON."""
    for line in reversed(res.get('stdout', '').splitlines()):
        line = line.strip()
        if line.startswith(marker + ' ') or line == marker:
            return line[len(marker):].strip()
    return None


def _unknown_arch_msg(arch):
    return (
        "ufw_docker: no build for architecture '%s' of this host; the collection "
        "carries x86_64 and aarch64 builds only (add a target to "
        "scripts/build-collection.sh to support it)" % arch
    )


def script(arch, digests, env='', args_file=None, upload=None, streamed=None, cache=False,
           tmpdir=None, purge=False):
    """The POSIX shell command, run as root, that runs the build on the host.

    ``digests`` maps each architecture of ARCHES to its build's SHA-256. The build reads its
    arguments from ``args_file``, else from standard input.

    Without ``upload`` or ``streamed``: run the cached build if its hash is right, else print
    MISS and the architecture. With ``upload`` (the copy in the remote user's ``tmpdir``): copy it
    into the cache directory as root; with ``streamed`` (its size in bytes, the build sent on
    standard input ahead of the arguments): write those bytes there as root. Then check that
    copy's hash (BAD_COPY when it is wrong), keep it as the cached build when ``cache`` (older
    builds removed), and run that checked copy; a copy not cached is removed after the run, with
    the cache directory if this run made it. ``tmpdir`` is removed. ``purge`` removes the cache
    after a successful run."""
    q = shlex.quote
    lines = [
        'umask 077',
        'd=%s' % q(CACHE_DIR),
        'a=%s' % (q(arch) if arch else '"$(uname -m)"'),
        'case "$a" in',
    ]
    for spelling, name in sorted(ARCHES.items()):
        sha = digests[name]
        lines.append('  %s) s=%s f="$d/ufw_docker-%s" ;;' % (spelling, sha, sha))
    lines += [
        '  *) echo %s "$a"; exit 0 ;;' % UNKNOWN_ARCH,
        'esac',
        # A regular file (not a link) whose content has the expected hash.
        'ok() { [ -f "$1" ] && [ ! -L "$1" ] && printf \'%s  %s\\n\' "$s" "$1" | sha256sum -c --status; }',
        # The cache directory is root's own: a directory, not a link, owned by root.
        'safe() { [ -d "$d" ] && [ ! -L "$d" ] && [ -O "$d" ]; }',
    ]
    if upload is None and streamed is None:
        lines.append('{ safe && ok "$f"; } || { echo %s "$a"; exit 0; }' % MISS)
        lines.append('r="$f"')
    else:
        if upload is not None:
            copy = 'cp %s "$n"' % q(upload)
            drain = ''
        else:
            # GNU's and BusyBox's head read no byte past the count: the arguments stay on
            # standard input for the build. A count that is off fails the hash check below.
            copy = 'head -c %d > "$n"' % streamed
            # A failure before the copy reads nothing: drain the input the connection still sends.
            drain = 'cat > /dev/null; '
        lines += [
            'fail() { echo %s "$*"; %sexit 1; }' % (SETUP_FAILED, drain),
            'made=',
            '[ -e "$d" ] || { mkdir -m 0700 "$d" && made=1; } || fail "cannot create $d"',
            'safe || fail "$d is not a directory owned by root"',
            'chmod 0700 "$d" || fail "cannot make $d private (0700)"',
            'n="$d/.new.$$"',
            '{ rm -f "$n" && %s; } || fail "cannot copy the build into $d"' % copy,
            'ok "$n" || { rm -f "$n";%s echo %s "$a"; exit 0; }'
            % (' rm -rf %s;' % q(tmpdir) if tmpdir else '', BAD_COPY),
            'chmod 0700 "$n" || fail "cannot make $n executable"',
        ]
        if cache:
            lines += [
                'mv -f "$n" "$f" || fail "cannot rename $n to $f"',
                'for o in "$d"/ufw_docker-*; do [ "$o" = "$f" ] || rm -f "$o"; done',
                'r="$f"',
            ]
        else:
            lines.append('r="$n"')
    run = '"$r"' + (' %s' % q(args_file) if args_file else '')
    lines.append('%s%s' % (env + ' ' if env else '', run))
    lines.append('rc=$?')
    if (upload is not None or streamed is not None) and not cache:
        lines.append('rm -f "$n"; [ -z "$made" ] || rmdir "$d"')
    if tmpdir:
        lines.append('rm -rf %s' % q(tmpdir))
    if purge:
        lines.append('[ "$rc" != 0 ] || rm -rf "$d"')
    lines.append('exit "$rc"')
    return '\n'.join(lines)


class ActionModule(ActionBase):
    """Picks the ufw_docker build for the host's architecture, verifies it, and runs it."""

    # False: Ansible would otherwise make a temporary directory on the host before run(), a
    # round trip the cached build does not need (the plugin makes one itself when it copies).
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        result.update(self._run(task_vars))
        return result

    def _run(self, task_vars):
        # The options and their types, checked here before anything reaches the host (the build
        # checks them again, with every value rule, on the host). Raises AnsibleActionFail.
        self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        if getattr(self._connection._shell, 'SHELL_FAMILY', None) != 'sh':
            return dict(failed=True, msg=(
                "ufw_docker: the host's shell is not a POSIX shell; the module runs on Linux "
                "hosts through /bin/sh only"))
        fact = self._fact_architecture(task_vars)
        if fact is not None and fact not in ARCHES:
            return dict(failed=True, msg=_unknown_arch_msg(fact))
        try:
            digests = {arch: _digest(build_path(arch)) for arch in set(ARCHES.values())}
        except OSError as e:
            return dict(failed=True, msg=(
                "ufw_docker: the collection lacks its build %s (%s); install the collection "
                "from its release tarball" % (e.filename, e.strerror)))

        args = dict(self._task.args)
        self._update_module_args(MODULE, args, task_vars)
        payload = _encode_args(args)
        check_mode = bool(self._task.check_mode)
        common = dict(env=self._compute_environment_string(),
                      purge=not check_mode and self._task.args.get('state') == 'absent')

        args_file = None
        if not self._stdin_reaches_root():
            # The arguments go as a file in the remote user's private temporary directory.
            args_file = self._shell_join(self._tmpdir(), 'args')
            self._transfer_data(args_file, payload)
            common.update(args_file=args_file, tmpdir=self._tmpdir())

        res = self._exec(script(fact, digests, **common), payload, args_file)
        unknown, missing = _marker(res, UNKNOWN_ARCH), _marker(res, MISS)
        if unknown is not None:
            return dict(failed=True, msg=_unknown_arch_msg(unknown))
        if missing is None:
            return self._finish(res, common)

        # The build is not cached (or is stale or damaged): send it, then root checks, caches
        # and runs its own copy in one go. Where standard input reaches root, the build goes
        # there ahead of the arguments, in this one round trip; elsewhere it is copied to the
        # remote user's temporary directory first (two more: the directory, the copy).
        arch = ARCHES.get(missing)
        if arch is None:
            return dict(failed=True, msg=_unknown_arch_msg(missing))
        common['cache'] = not check_mode and not common['purge']
        if args_file is None:
            with open(build_path(arch), 'rb') as f:
                build = f.read()
            res = self._exec(script(arch, digests, streamed=len(build), **common),
                             build + payload.encode('utf-8'), None)
        else:
            upload = self._shell_join(self._tmpdir(), 'ufw_docker')
            self._transfer_file(build_path(arch), upload)
            common.update(upload=upload, tmpdir=self._tmpdir())
            res = self._exec(script(arch, digests, **common), payload, args_file)
        if _marker(res, BAD_COPY) is not None:
            if args_file is not None:
                self._connection._shell.tmpdir = None  # the command removed it
            return dict(failed=True, msg=(
                "ufw_docker: the build copied to the host does not have the SHA-256 of the "
                "controller's %s (%s); nothing was run. The copy was damaged or replaced on its "
                "way; check the connection and the remote user's temporary directory"
                % (build_path(arch), digests[arch])))
        return self._finish(res, common)

    def _tmpdir(self):
        """The remote user's temporary directory of this task, made on first use."""
        if self._connection._shell.tmpdir is None:
            self._make_tmp_path()
        return self._connection._shell.tmpdir

    def _shell_join(self, *parts):
        return self._connection._shell.join_path(*parts)

    def _finish(self, res, common):
        """The result of a command that ran the build (or failed to set it up)."""
        setup_failed = _marker(res, SETUP_FAILED)
        if setup_failed is not None:
            return dict(failed=True, rc=res.get('rc'), stderr=res.get('stderr', ''), msg=(
                "ufw_docker: %s on the host, as root; nothing was run (%s)"
                % (setup_failed, res.get('stderr', '').strip() or 'no error output')))
        if common.get('tmpdir'):
            self._connection._shell.tmpdir = None  # the command removed it
        return self._parse(res)

    def _stdin_reaches_root(self):
        """Whether the connection can give the command standard input through become, as
        Ansible's pipelining does (ansible.plugins.action.ActionBase._is_pipelining_enabled)."""
        become = self._connection.become if self._play_context.become else None
        return bool(getattr(self._connection, 'has_pipelining', False)) and \
            (become is None or become.name != 'su')

    def _exec(self, cmd, payload, args_file):
        return self._low_level_execute_command(
            cmd, sudoable=True, in_data=None if args_file else payload)

    def _parse(self, res):
        """The module's JSON result, parsed and cleaned as ``_execute_module`` does."""
        if len(inspect.signature(self._parse_returned_data).parameters) > 1:
            data = self._parse_returned_data(res, 'legacy')
        else:  # pragma: no cover - ansible-core before 2.19
            data = self._parse_returned_data(res)
        remove_internal_keys(data)
        return data

    @staticmethod
    def _fact_architecture(task_vars):
        facts = task_vars.get('ansible_facts') or {}
        arch = facts.get('architecture') or task_vars.get('ansible_architecture')
        return str(arch) if arch else None


def main():
    """Validates a task's arguments as a Python module's AnsibleModule would, and nothing else.

    Never called by Ansible. ansible-lint's ``args`` rule looks a task's action up among action
    plugins first (ansiblelint.utils.load_plugin: ``action_loader.find_plugin_with_context``,
    then ``module_loader``), loads that file, and validates the task's options by calling its
    ``main()`` with ``AnsibleModule`` patched (ansiblelint/rules/args.py,
    ``ArgsRule.matchtask``); an action plugin without ``main()`` is skipped ("skip validation
    for module options that are implemented as action plugin"). This one has nothing to hide
    from that check: its options are exactly the module's, so a misspelt option or a wrong type
    in a playbook is a lint error, not a surprise on the host."""
    from ansible.module_utils.basic import AnsibleModule  # looked up now: the linter patches it

    AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
