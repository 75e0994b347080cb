# -*- coding: utf-8 -*-
# Copyright: ufw-docker maintainers
# MIT License (see the LICENSE of the project)
"""Runs the build of the ufw_docker binary module that matches the managed host's CPU, in one
SSH round trip when the host already holds that build.

Why it exists: a binary module is one executable per architecture, while a task should say
``ufw_docker`` whatever the host is. The collection ships ``plugins/modules/ufw_docker`` (the
static x86_64 build) and ``plugins/modules/ufw_docker_aarch64`` (the static aarch64 build); this
action plugin, which Ansible runs for every ``ufw_docker`` task, picks one by the host's
architecture. Check mode, diff mode and the arguments pass through untouched; this file never
interprets the module's parameters (validation belongs to the binary), except that
``state: absent`` also removes the cache below.

And it keeps a run cheap. Ansible's way to run a binary module costs several round trips per host
(make a temporary directory, copy the 0.7 MiB build, copy the arguments, run, remove), every run.
Here the host keeps the build in ``/var/cache/ufw-docker`` (root's, mode 0700), named by its
SHA-256. One shell command finds the architecture (``uname -m``, or the gathered fact), checks the
cached build's hash with ``sha256sum``, and runs it with the arguments on standard input from a
here-document. Only when the build is missing, stale or damaged does the plugin copy it, once,
and run that copy in the same command that caches it. A dry run (check mode) caches nothing. An
unknown architecture fails before anything is copied.

Where this cannot apply (a non-POSIX shell, arguments larger than ``MAX_INLINE_ARGS``, a task
with ``no_log`` (the command, arguments included, shows at -vvv), an ansible-core without the
pieces it uses), the plugin runs the build Ansible's usual way.
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

try:  # ansible-core 2.19 and later
    from ansible.module_utils.common.json import Direction, get_module_encoder

    def _encode_args(args):
        return json.dumps(args, cls=get_module_encoder('legacy', Direction.CONTROLLER_TO_MODULE))

except ImportError:  # pragma: no cover - older ansible-core
    from ansible.module_utils.common.json import AnsibleJSONEncoder

    def _encode_args(args):
        return json.dumps(args, cls=AnsibleJSONEncoder)


display = Display()

COLLECTION = 'ufw_docker.ufw_docker'

# `uname -m` spellings (and the fact's) of each supported CPU, to the module built for it.
BUILDS = {
    'x86_64': 'ufw_docker',
    'amd64': 'ufw_docker',
    'aarch64': 'ufw_docker_aarch64',
    'arm64': 'ufw_docker_aarch64',
}

CACHE_DIR = '/var/cache/ufw-docker'

# The arguments travel inside the command line (a here-document), and Linux caps one argument
# at 128 KiB. Their JSON carries no single quote (written as \u0027), so quoting the command for
# `sh -c` and for become does not grow it. Larger arguments go Ansible's usual way, as a file.
MAX_INLINE_ARGS = 64 * 1024

MISS = 'UFW_DOCKER_CACHE_MISS'
UNKNOWN_ARCH = 'UFW_DOCKER_UNKNOWN_ARCH'
EOF_MARK = 'UFW_DOCKER_ARGS'

# Hash of each build on the controller, by (path, size, mtime): read once per controller process.
_DIGESTS = {}


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


class ActionModule(ActionBase):
    """Picks the ufw_docker build for the host's architecture and runs it."""

    # False: Ansible would otherwise make a temporary directory on the host before run(), a
    # round trip the cached way does not need (it makes one itself when it copies the build).
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)

        fact = self._fact_architecture(task_vars)
        if fact is not None and fact not in BUILDS:
            result.update(failed=True, msg=_unknown_arch_msg(fact))
            return result

        data = self._run_cached(fact, task_vars)
        if data is None:
            data = self._run_classic(fact, task_vars)
        result.update(data)
        return result

    # -- the usual way ---------------------------------------------------------------------

    def _run_classic(self, fact, task_vars):
        """Ansible's own transfer-and-run, for what the cached way does not cover."""
        arch = fact
        if arch is None:
            res = self._low_level_execute_command('uname -m', sudoable=False)
            arch = res.get('stdout', '').strip()
            if res.get('rc') != 0 or not arch:
                return dict(failed=True, msg=(
                    "ufw_docker: could not tell the host's architecture: `uname -m` failed "
                    "(rc=%s): %s; gather facts (ansible_facts['architecture']) or check the "
                    "connection" % (res.get('rc'), (res.get('stderr') or arch).strip())))
        if arch not in BUILDS:
            return dict(failed=True, msg=_unknown_arch_msg(arch))
        return self._execute_module(module_name='%s.%s' % (COLLECTION, BUILDS[arch]),
                                    module_args=self._task.args, task_vars=task_vars)

    # -- the cached way --------------------------------------------------------------------

    def _run_cached(self, fact, task_vars):
        """Runs the build from the host's cache (copying it there first if needed); None when
        this way does not apply and the usual one must run instead."""
        if getattr(self._connection._shell, 'SHELL_FAMILY', None) != 'sh':
            display.vvv('ufw_docker: not a POSIX shell; running the module the usual way')
            return None
        if self._task.no_log:
            # The arguments would be in the command, which -vvv prints.
            return None
        try:
            builds = {name: self._module_path(name) for name in set(BUILDS.values())}
            args = dict(self._task.args)
            self._update_module_args('%s.%s' % (COLLECTION, BUILDS['x86_64']), args, task_vars)
            # JSON strings may spell ' as \u0027: then the command needs no quote escaping.
            payload = _encode_args(args).replace("'", '\\u0027')
        except Exception as e:  # pylint: disable=broad-except
            display.vvv('ufw_docker: %s; running the module the usual way' % e)
            return None
        if len(payload) > MAX_INLINE_ARGS or '\n' in payload:
            display.vvv('ufw_docker: %d bytes of arguments; running the module the usual way'
                        % len(payload))
            return None

        check_mode = bool(self._task.check_mode)
        purge = not check_mode and self._task.args.get('state') == 'absent'
        env = self._compute_environment_string()

        res = self._low_level_execute_command(
            self._script(fact, builds, payload, env, purge=purge), sudoable=True)
        unknown, missing = _marker(res, UNKNOWN_ARCH), _marker(res, MISS)
        if unknown is not None:
            return dict(failed=True, msg=_unknown_arch_msg(unknown))
        if missing is None:
            return self._parse(res)

        # The build is not cached (or is stale): copy it, then cache it and run it in one go.
        arch = missing
        if arch not in BUILDS:
            return dict(failed=True, msg=_unknown_arch_msg(arch))
        local = builds[BUILDS[arch]]
        self._make_tmp_path()
        tmpdir = self._connection._shell.tmpdir
        remote = self._connection._shell.join_path(tmpdir, BUILDS[arch])
        self._transfer_file(local, remote)
        res = self._low_level_execute_command(
            self._script(arch, builds, payload, env, purge=purge, upload=remote,
                         cache=not check_mode and not purge, tmpdir=tmpdir),
            sudoable=True)
        if res.get('stdout', '').strip():
            # The command removed the temporary directory itself.
            self._connection._shell.tmpdir = None
        return self._parse(res)

    def _module_path(self, name):
        found = self._shared_loader_obj.module_loader.find_plugin_with_context(
            '%s.%s' % (COLLECTION, name), collection_list=self._task.collections)
        if not found.resolved or not found.plugin_resolved_path:
            raise LookupError(name)
        return found.plugin_resolved_path

    @staticmethod
    def _script(arch, builds, payload, env, purge, upload=None, cache=False, tmpdir=None):
        """The POSIX shell command that runs the build on the host.

        Without ``upload``: run the cached build if its hash is right, else print MISS and the
        architecture. With ``upload`` (the copied build): cache it when ``cache`` (verified, then
        renamed into place, older builds removed) and run the cached copy, else run the upload;
        then remove ``tmpdir``. ``purge`` removes the cache after a successful run."""
        q = shlex.quote
        lines = ['umask 077', 'd=%s' % q(CACHE_DIR)]
        arch_expr = q(arch) if arch else '"$(uname -m)"'
        lines.append('a=%s' % arch_expr)
        lines.append('case "$a" in')
        for spelling, name in sorted(BUILDS.items()):
            sha = _digest(builds[name])
            lines.append('  %s) s=%s f="$d/%s-%s" ;;' % (spelling, sha, name, sha))
        lines.append('  *) echo %s "$a"; exit 0 ;;' % UNKNOWN_ARCH)
        lines.append('esac')
        lines.append('ok() { [ -f "$1" ] && printf \'%s  %s\\n\' "$s" "$1" | sha256sum -c --status >/dev/null 2>&1; }')
        if upload is None:
            lines.append('ok "$f" || { echo %s "$a"; exit 0; }' % MISS)
            lines.append('r="$f"')
        else:
            lines.append('u=%s' % q(upload))
            lines.append('r="$u"')
            if cache:
                lines.append(
                    'if mkdir -p "$d" && chmod 0700 "$d" && cp "$u" "$d/.new.$$" && ok "$d/.new.$$" '
                    '&& chmod 0700 "$d/.new.$$" && mv -f "$d/.new.$$" "$f"; then '
                    'for o in "$d"/ufw_docker*; do [ "$o" = "$f" ] || rm -f "$o"; done; r="$f"; '
                    'else rm -f "$d/.new.$$"; fi 2>/dev/null')
            lines.append('[ "$r" = "$f" ] || chmod u+x "$u"')
        lines.append('%s"$r" /dev/stdin <<\'%s\'' % (env + ' ' if env else '', EOF_MARK))
        lines.append(payload)
        lines.append(EOF_MARK)
        lines.append('rc=$?')
        if tmpdir:
            lines.append('rm -rf %s' % q(tmpdir))
        if purge:
            lines.append('[ "$rc" != 0 ] || rm -rf "$d"')
        lines.append('exit "$rc"')
        return '\n'.join(lines)

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
