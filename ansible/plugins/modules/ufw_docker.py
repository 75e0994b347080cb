#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ufw-docker contributors
# MIT License (see LICENSE in the collection's root or https://opensource.org/licenses/MIT)
"""The ufw_docker module's documentation and argument spec, for Ansible's tools.

Why it exists: the module itself is a static binary (binaries/ufw_docker-x86_64 and
binaries/ufw_docker-aarch64 in this collection), run on the managed host by the action plugin
plugins/action/ufw_docker.py, which needs no Python there. Ansible's tools only know Python
modules: ansible-doc lists and shows this file, Galaxy indexes it, ansible-test sanity checks its
documentation against ARGUMENT_SPEC (plugins/module_utils/argument_spec.py, shared with the
action plugin). The options are the binary's (OPTIONS in src/params.rs): scripts/check-options.py
fails when DOCUMENTATION, ARGUMENT_SPEC, the README or the role differ from them.

main() never manages a firewall: if this file is ever run as a module (the action plugin
bypassed), it validates the arguments and fails with a message saying so.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: ufw_docker
short_description: Keep ports published by Docker behind UFW
version_added: 0.1.0
description:
  - C(docker run -p 8080:80) makes Docker insert DNAT and FORWARD rules that run before UFW's
    chains, so a host with C(ufw default deny incoming) still serves every published port.
  - This module writes the fix into the iptables C(DOCKER-USER) chain, which Docker evaluates
    first and never rewrites, and into a managed block of C(/etc/ufw/after.rules) and
    C(after6.rules), so that it survives C(ufw reload) and reboots.
  - In C(DOCKER-USER), in this order, replies to established connections return; C(ufw route)
    rules decide (optional); traffic from Docker bridges returns; O(trusted_networks) return;
    each O(allow) entry returns (matched on the original, published destination port); every
    other DNATed connection, or one routed into a Docker bridge, is logged (rate-limited) and
    dropped; everything else returns. New DNATed connections are marked as seen there.
  - The same policy, less the C(ufw route) rules, is the guard C(ufw-docker-guard) in the
    C(security) table, jumped to first from its FORWARD; the kernel runs it after filter and
    Docker never touches it. It returns what C(DOCKER-USER) marked, and judges the connections
    Docker accepted before C(DOCKER-USER) saw them (Docker 20.10's ip6tables rules of every
    network it creates or re-creates), so that blocked ports stay closed with no rerun. Its
    chains are in the after.rules block too; its jump is made by a run, not by a file.
  - The module owns C(DOCKER-USER), C(ufw-docker-logging-deny) and, for lists of more than 16
    rules of a kind, the sub-chains it folds them into (C(ufw-docker-allow-*),
    C(ufw-docker-trust-*), C(ufw-docker-untrusted)), so that the number of rules a new
    connection crosses grows with the logarithm of the list's length, not with the length.
    In the C(security) table it owns C(ufw-docker-guard), its copies of those chains and its jump
    in FORWARD. It never writes INPUT, UFW's chains or text outside its markers in the
    after.rules files. Beside them it writes only the files a task names, O(policy_file) and
    O(command_path).
  - A binary module that needs no Python on the managed host. The collection carries a static
    x86_64 and a static aarch64 build; its action plugin runs the one matching the host's
    architecture, after checking its SHA-256.
author:
  - ufw-docker contributors (!UNKNOWN)
options:
  state:
    description:
      - V(present) writes the block and the chains.
      - V(absent) removes the block from both files and empties the chains live.
    type: str
    choices: [present, absent]
    default: present
  after_rules:
    description:
      - The IPv4 file to manage.
    type: path
    default: /etc/ufw/after.rules
  after6_rules:
    description:
      - The IPv6 file to manage.
    type: path
    default: /etc/ufw/after6.rules
  unit_path:
    description:
      - Where the role's C(ufw-docker.service) lives (installed for O(backend=iptables)).
      - The module only looks whether it exists and returns RV(unit_present); it never writes
        it.
    type: path
    default: /etc/systemd/system/ufw-docker.service
  ipv6:
    description:
      - Also manage O(after6_rules) and ip6tables.
      - Warns and skips on a host without IPv6.
    type: bool
    default: true
  allow:
    description:
      - Published ports open to the public.
    type: list
    elements: dict
    default: []
    suboptions:
      port:
        description:
          - The published (host) port, a number or a range V(start:end).
        type: raw
        required: true
      proto:
        description:
          - The protocol.
        type: str
        choices: [tcp, udp]
        default: tcp
      from:
        description:
          - Source CIDRs, IPv4 and/or IPv6, that may reach the port.
          - Anywhere when not set.
        type: list
        elements: str
      comment:
        description:
          - A comment carried into the rule.
        type: str
  trusted_networks:
    description:
      - Source CIDRs that may reach every published port (a LAN, a VPN).
    type: list
    elements: str
    default: []
  ufw_route_rules:
    description:
      - Let C(ufw route allow ...) rules decide first.
    type: bool
    default: true
  log:
    description:
      - Log dropped connections (rate-limited).
    type: bool
    default: true
  log_prefix:
    description:
      - Prefix of those log lines.
      - At most 29 printable characters, no quotes.
    type: str
    default: "[UFW DOCKER BLOCK] "
  log_limit:
    description:
      - Rate of those log lines, as iptables' C(limit) takes it (C(N/second|minute|hour|day)).
    type: str
    default: 3/min
  apply:
    description:
      - V(live) runs one C(iptables-restore --noflush) per family of only the module's chains,
        each table atomic.
      - V(reload) runs C(ufw reload).
      - V(none) writes the files only.
    type: str
    choices: [live, reload, none]
    default: live
  backup:
    description:
      - Keep a copy of each file before changing it (C(after.rules.PID.YYYY-MM-DD@HH:MM:SS~)).
    type: bool
    default: false
  validate:
    description:
      - Test-load the rules with C(iptables-restore --test) before anything is written.
      - With O(apply=live), outside check mode, a family whose chains are restored is not
        test-loaded; its restore, one transaction of the same rules, runs before any file is
        written and stands in for the test.
    type: bool
    default: true
  backend:
    description:
      - V(ufw) keeps the policy in O(after_rules)/O(after6_rules) as well as in the live chains.
      - V(iptables) is for hosts without UFW, live chains only; it requires O(apply=live) and
        never consults C(ufw route) rules. Nothing makes the chains survive a reboot or a
        Docker restart by itself; the role reruns the module after Docker starts.
    type: str
    choices: [ufw, iptables]
    default: ufw
  docker_host:
    description:
      - Docker's API, read (C(GET /containers/json) only) to name the container, Compose project
        and service or Swarm service behind each port of the exposure report (RV(published)).
        Only a local socket, V(unix:///path/to/docker.sock), is supported; anything else fails
        the task.
      - When not set (or empty), the environment's E(DOCKER_HOST) (the task's C(environment))
        is used, else V(unix:///var/run/docker.sock). A E(DOCKER_HOST) that is not V(unix://)
        only costs the names, with a warning.
      - Names are for people; no rule depends on them. When the API is absent, refuses, is slow
        (2 seconds in all) or answers garbage, the report keeps its other fields and one warning
        says why the names are missing. Hosts where Docker publishes nothing are not asked.
    type: str
  policy_file:
    description:
      - Where a successful run with O(state=present) saves its own parameters (the task's, less
        Ansible's and this one, less those left unset) as one JSON object, the policy that the
        binary's command-line verbs read on the host (C(ufw_docker status), C(ufw_docker check),
        C(ufw_docker apply)), so that a host managed by Ansible and one managed by hand keep one
        saved state. The role sets it to C(/etc/ufw-docker/policy.json), the command's default.
      - The file is written atomically, after the firewall, and only when it does not already
        hold the same JSON (a reformatted file that says the same is left alone); writing it is a
        change, with its own diff. Its directory is created (mode 0755) when missing; a new file
        is mode 0640.
      - With O(state=absent) the file is left as it is (as C(ufw_docker remove) leaves it). Not
        set, or empty, no file is kept.
    type: path
  command_path:
    description:
      - Where a successful run with O(state=present) installs the build that runs (the one the
        action plugin has just checked by its SHA-256, read from C(/proc/self/exe)) as the
        C(ufw_docker) command, for C(ufw_docker status), C(check) and C(apply) on the host. The
        role sets it to C(/usr/local/sbin/ufw_docker). Root never installs a file it did not
        just verify, and the role needs no copy task nor the architecture fact for it.
      - Installed after the firewall and the policy file, and only when the path does not
        already hold this build as root's file of mode 0755; atomically (a temporary file
        beside it, renamed over it), owner and group root, mode 0755, its directory created
        (mode 0755) when missing. Installing it is a change, with its own diff (the SHA-256,
        mode and owner before and after). Check mode reports it and writes nothing.
      - The module owns the file at this path, and replaces a regular file it finds there.
        Refused before anything changes, the run failing with nothing done, are a directory (the
        path names the command, not where it goes), a symbolic link wherever it points (following
        it would overwrite the file it names, perhaps another program, and replacing it would
        undo a link made on purpose; remove it, or point O(command_path) at where the command
        belongs), and anything else that is not a regular file. Only the last component is
        looked at, so a parent directory may be a link.
      - With O(state=absent) the file is left as it is (the role removes it). It is not saved in
        O(policy_file), and a policy file that holds it is refused by the command line. Not set,
        or empty, nothing is installed.
    type: path
notes:
  - Values are coerced as Ansible's own modules do (V("yes"), V("true"), V(1) are true; V("80")
    is a port). Unknown parameters fail with Ansible's "Unsupported parameters" message.
  - The block sits between C(# BEGIN UFW-DOCKER MANAGED BLOCK sha256=...) and
    C(# END UFW-DOCKER MANAGED BLOCK); the hash detects hand edits (warned, then restored).
    Unbalanced markers or two blocks fail the task with nothing written.
  - Docker's nftables firewall backend has no C(DOCKER-USER) chain; this module is for Docker's
    iptables backend (the default).
  - Runs on one host are serialised by a lock (C(/run/ufw_docker.lock)).
  - The action plugin keeps the build in C(/var/cache/ufw-docker) on the host, named by its
    SHA-256, and runs it from there in one SSH command; it copies the build only when it is
    missing, stale or damaged. Check mode caches nothing; O(state=absent) removes the cache.
  - The arguments reach the build on its standard input, never on a command line.
requirements:
  - iptables and ip6tables (nft or legacy) on the managed host
  - UFW for O(apply=reload) and O(ufw_route_rules)
attributes:
  check_mode:
    support: full
    description: Plans and reports C(changed), C(diff) and C(commands) without writing.
  diff_mode:
    support: full
    description: One entry per file and per family's live chain.
  platform:
    support: full
    platforms: posix
    description: Linux, x86_64 or aarch64.
seealso:
  - name: Docker and iptables
    description: Docker's documentation of DOCKER-USER.
    link: https://docs.docker.com/engine/network/packet-filtering-firewalls/
"""

EXAMPLES = r"""
- name: Keep Docker's published ports behind UFW.
  ufw_docker.ufw_docker.ufw_docker:
    allow:
      - port: 443
        comment: public web
      - port: 8443
        from: [198.51.100.0/24, 2001:db8:100::/48]
        comment: admin from the office
      - port: "60000:60100"
        proto: udp
        comment: mosh
    trusted_networks:
      - 10.20.0.0/16        # the site VPN, not all of 10/8

- name: Write the files only, for an image build where the firewall is not running.
  ufw_docker.ufw_docker.ufw_docker:
    apply: none
    allow: [{port: 80}]

- name: Remove the protection (files back to what they were, chains emptied).
  ufw_docker.ufw_docker.ufw_docker:
    state: absent

- name: Log less, through UFW's own reload instead of a live restore.
  ufw_docker.ufw_docker.ufw_docker:
    log_limit: 1/minute
    log_prefix: "[DOCKER DROP] "
    apply: reload
    backup: true
"""

RETURN = r"""
changed:
  description: Whether a file or a live chain changed (or would, in check mode).
  returned: always
  type: bool
  sample: true
msg:
  description: What changed, or that everything already was as requested.
  returned: always
  type: str
  sample: "would change: /etc/ufw/after.rules, /etc/ufw/after6.rules"
check_mode:
  description:
    - Whether this run only planned (check mode, at the play, task or command line level).
  returned: always
  type: bool
  sample: false
diff:
  description:
    - With C(--diff), one entry per file and per family's live chain, C(before)/C(after) with
      headers.
  returned: when diff mode is on
  type: list
  elements: dict
commands:
  description: The mutating commands that ran (or would run in check mode).
  returned: always
  type: list
  elements: str
  sample: ["iptables-restore --noflush", "ip6tables-restore --noflush"]
rules:
  description: The rules per family, as iptables-restore lines.
  returned: always
  type: dict
  contains:
    ipv4:
      description: The IPv4 rules.
      type: list
      elements: str
      returned: always
    ipv6:
      description: The IPv6 rules (empty when O(ipv6) is off).
      type: list
      elements: str
      returned: always
  sample:
    ipv4:
      - -A DOCKER-USER -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "ufw-docker: replies" -j RETURN
backup_files:
  description: Paths of the backups made.
  returned: always
  type: list
  elements: str
  sample: ["/etc/ufw/after.rules.4242.2026-01-01@12:00:00~"]
published:
  description:
    - The exposure report, every port Docker publishes (read from its nat DNAT rules, both
      families) with C(family), C(proto), C(host_address) (absent for all addresses),
      C(host_port), C(container_address), C(container_port), C(bridge), C(mode), and who on
      the internet reaches it C(now) and C(after) the run.
    - C(mode) is C(host) for a port Docker publishes to one container (C(docker run -p), a Swarm
      service's C(mode=host)), C(ingress) for a port of Swarm's routing mesh (nat
      C(DOCKER-INGRESS), DNAT to the ingress sandbox on C(docker_gwbridge)).
    - C(open), C(restricted) (to C(sources)), C(blocked), or C(unknown) (a rule the module does
      not recognise decides); C(trusted) lists the networks that reach it anyway.
    - "Who publishes it, from Docker's API (O(docker_host)), when it could be read and names a
      container with that address and port: C(container) (the name), C(container_id),
      C(image), and when labelled C(compose_project) and C(compose_service)
      (C(com.docker.compose.*)) or C(swarm_service) (C(com.docker.swarm.service.name)).
      An C(ingress) port has C(swarm_service) alone, the service publishing it (from
      C(GET /services), which only a manager answers; unnamed on a worker, without a warning)."
  returned: always
  type: list
  elements: dict
  sample:
    - family: ipv4
      proto: tcp
      host_port: "8080"
      container_address: 172.17.0.2
      container_port: "80"
      bridge: docker0
      mode: host
      now: open
      after: blocked
      sources: []
      trusted: []
      container: shop-web-1
      container_id: 4eba0d8f86475e475e292bd22b1ea7f0571cc208aee0b94e1b537e4cecac208f
      image: shop:1.4
      compose_project: shop
      compose_service: web
unrecognised_dnat:
  description: DNAT rules that are not Docker's (ports published by something else), verbatim.
  returned: always
  type: list
  elements: str
warnings:
  description:
    - Hand edits replaced, the ufw-docker script's block adopted, foreign rules in DOCKER-USER,
      DOCKER-USER not hooked first in FORWARD, UFW not loaded, no IPv6, Docker's API not read
      (no names in RV(published)).
  returned: always
  type: list
  elements: str
docker_firewall_backend:
  description:
    - Docker's firewall backend as the run saw it. V(iptables) when Docker's chains are in
      iptables (there is a C(DOCKER-USER) to fill); V(nftables) when Docker programs nftables
      itself (Docker 29's C(firewall-backend), which has no C(DOCKER-USER); with
      O(state=present) the task fails and says so); V(none) when no Docker chain is loaded in
      either family (Docker stopped, or run with C(iptables) off).
    - Null with O(apply=none), which reads no table. Also returned by a failure that came
      after the host was read, so that a fleet audit can count each backend.
  returned: always
  type: str
  sample: iptables
unit_present:
  description:
    - Whether O(unit_path) exists, so that the role can remove a unit an earlier run left
      (after a switch to O(backend=ufw) or O(state=absent)) without another task per host.
  returned: always
  type: bool
  sample: false
state:
  description: The state the run was asked for, V(present) or V(absent).
  returned: always
  type: str
  sample: present
chains:
  description:
    - The chains the module owns on this host, for this policy, C(DOCKER-USER) and
      C(ufw-docker-logging-deny) first, then the sub-chains of folded lists.
  returned: always
  type: list
  elements: str
  sample: ["DOCKER-USER", "ufw-docker-logging-deny"]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ufw_docker.ufw_docker.plugins.module_utils.argument_spec import ARGUMENT_SPEC


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.fail_json(msg=(
        'ufw_docker runs through its action plugin (ufw_docker.ufw_docker.ufw_docker), which '
        'runs the static build for the host; this Python file holds only its documentation and '
        'argument spec. Call the module by its full name from the collection, not a copy of '
        'this file.'))


if __name__ == '__main__':
    main()
