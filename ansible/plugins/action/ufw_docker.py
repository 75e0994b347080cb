# -*- coding: utf-8 -*-
# Copyright: ufw-docker maintainers
# MIT License (see the LICENSE of the project)
"""Runs the build of the ufw_docker binary module that matches the managed host's CPU.

Why it exists: a binary module is one executable per architecture, while a task should say
``ufw_docker`` whatever the host is. The collection ships ``plugins/modules/ufw_docker`` (the
static x86_64 build) and ``plugins/modules/ufw_docker_aarch64`` (the static aarch64 build); this
action plugin, which Ansible runs for every ``ufw_docker`` task, picks one by the host's
architecture and runs it as a normal module (check mode, diff mode and the arguments pass through
untouched).

The architecture comes from the gathered fact ``ansible_facts['architecture']`` when there is
one, else from one ``uname -m`` on the host (no fact gathering needed). Any other architecture
fails the task before anything is copied to the host. This file must not interpret the module's
parameters: validation belongs to the binary.
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase

COLLECTION = 'ufw_docker.ufw_docker'

# `uname -m` spellings (and the fact's) of each supported CPU, to the module built for it.
BUILDS = {
    'x86_64': COLLECTION + '.ufw_docker',
    'amd64': COLLECTION + '.ufw_docker',
    'aarch64': COLLECTION + '.ufw_docker_aarch64',
    'arm64': COLLECTION + '.ufw_docker_aarch64',
}


class ActionModule(ActionBase):
    """Picks the ufw_docker build for the host's architecture and runs it."""

    TRANSFERS_FILES = True
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)

        arch, error = self._architecture(task_vars)
        if error:
            result.update(failed=True, msg=error)
            return result
        module = BUILDS.get(arch)
        if module is None:
            result.update(
                failed=True,
                msg=(
                    "ufw_docker: no build for architecture '%s' of this host; the collection "
                    "carries x86_64 and aarch64 builds only (add a target to "
                    "scripts/build-collection.sh to support it)" % arch
                ),
            )
            return result

        result.update(self._execute_module(module_name=module, module_args=self._task.args, task_vars=task_vars))
        return result

    def _architecture(self, task_vars):
        """The host's machine name: the gathered fact if there is one, else `uname -m`."""
        facts = task_vars.get('ansible_facts') or {}
        arch = facts.get('architecture') or task_vars.get('ansible_architecture')
        if arch:
            return str(arch), None
        res = self._low_level_execute_command('uname -m', sudoable=False)
        if res.get('rc') != 0 or not res.get('stdout', '').strip():
            return None, (
                "ufw_docker: could not tell the host's architecture: `uname -m` failed (rc=%s): %s; "
                "gather facts (ansible_facts['architecture']) or check the connection"
                % (res.get('rc'), (res.get('stderr') or res.get('stdout') or '').strip())
            )
        return res['stdout'].strip(), None
