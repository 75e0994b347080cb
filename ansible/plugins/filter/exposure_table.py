# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ufw-docker contributors
# MIT License (see LICENSE in the collection's root or https://opensource.org/licenses/MIT)
"""The ``exposure_table`` filter: a ufw_docker module result's exposure report (``published``,
``unrecognised_dnat``) as the role's table of lines, one per published port, with who on the
internet reaches it now and after the run.

Why it exists: the role keeps that table as the fact ``ufw_docker_exposure`` on every run, on
every host (and shows it in check mode). It was a template lookup (templates/exposure.j2), which
costs the controller a Jinja compilation of the whole template for every host, in every worker
(issue 15: 0.7 s of a 25-host no-op rerun, where a set_fact of this filter takes 0.45 s). The
documentation is exposure_table.yml beside this file.

What it must not do: judge a firewall. Who reaches a port now and after is the module's verdict
(``now``, ``after``), copied as it is; this file only lays it out. Standard library only.
"""

from __future__ import annotations

# One row: the change marker, family, protocol, where it is published, who publishes it, who
# reaches it now, and after the run.
ROW = '%-1s %-4s %-3s %-32s %-32s %-10s %s'
HEADER = ROW % (' ', 'fam', 'pro', 'published on', 'container', 'now', 'after this run')
NONE_PUBLISHED = 'no port is published by Docker on this host'
FOREIGN = 'published by something other than Docker, not judged: '


def _text(value):
    """A value as Jinja's ``~`` writes it (None as ``None``), as the table always has."""
    return str(value)


def _publisher(port, address):
    """Who publishes the port, as Docker's API names it: ``name (project/service)`` for Compose,
    ``service (swarm)`` for a Swarm task, ``service (swarm ingress)`` for a port of Swarm's
    routing mesh, the name otherwise; the container's address where the module had no name (no
    API, no such container; ``swarm ingress (address)`` on a node that is not a manager)."""
    ingress = port.get('mode', 'host') == 'ingress'
    if 'swarm_service' in port:
        return _text(port['swarm_service']) + (' (swarm ingress)' if ingress else ' (swarm)')
    if ingress:
        return 'swarm ingress (' + address + ')'
    if 'compose_project' in port:
        return '%s (%s/%s)' % (_text(port.get('container')), _text(port['compose_project']),
                               _text(port.get('compose_service', '?')))
    return _text(port['container']) if 'container' in port else address


def _row(port):
    v6 = port.get('family') == 'ipv6'
    host_address = port.get('host_address')
    where = _text(host_address) if host_address else '*'
    if v6 and host_address:
        where = '[' + where + ']'
    where += ':' + _text(port.get('host_port'))
    address = _text(port.get('container_address'))
    address = ('[' + address + ']' if v6 else address) + ':' + _text(port.get('container_port'))
    now, after = port.get('now'), port.get('after')
    after_words = _text(after)
    if after == 'restricted' and port.get('sources'):
        after_words += ' from ' + ','.join(_text(s) for s in port['sources'])
    return ROW % ('*' if now != after else ' ', _text(port.get('family')), _text(port.get('proto')),
                  where, _publisher(port, address), _text(now), after_words)


def exposure_table(result):
    """The table of a ufw_docker result: a header and one line per published port (``*`` marks
    a line whose reach the run changes), or one line saying nothing is published; then one line
    per DNAT rule that is not Docker's. A result without a report (a failure) has no port."""
    result = result if isinstance(result, dict) else {}
    ports = result.get('published') or []
    lines = [HEADER] + [_row(p) for p in ports] if ports else [NONE_PUBLISHED]
    lines += [FOREIGN + _text(rule) for rule in result.get('unrecognised_dnat') or []]
    # As the template's lines were read (splitlines, no empty line), so that a name holding a
    # line break cannot add a row of its own that looks like the module's.
    return [part for line in lines for part in line.splitlines() if part]


class FilterModule:
    """ufw_docker.ufw_docker's filters."""

    def filters(self):
        return {'exposure_table': exposure_table}
