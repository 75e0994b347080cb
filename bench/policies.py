"""The policies `make bench` applies, in one place for every part: module arguments as dicts.

Why it exists: the one-host runs, the scale runs, the plan timings and the role runs must
measure the same policies, and the baseline role must carry exactly the rules the module
renders for them. Addresses are documentation ranges only.
"""


def host_policy(variant=0):
    """A realistic host: a few published ports, one restricted, two trusted networks.
    `variant` 1 moves one port, so alternating 0 and 1 changes the policy every run."""
    web = 8080 if variant == 0 else 8081
    return {
        "allow": [
            {"port": web, "comment": "web"},
            {"port": 8443, "from": ["198.51.100.0/24", "2001:db8:100::/48"], "comment": "admin"},
            {"port": "5000:5010", "proto": "udp"},
            {"port": 9000},
            {"port": 9100, "from": ["203.0.113.0/25"]},
        ],
        "trusted_networks": ["203.0.113.128/25", "2001:db8:200::/48"],
    }


def scale_policy(n):
    """n allow entries on ports two apart (so no two merge: the tree, not merging, has to keep
    the path short), one in ten UDP, one in seven restricted to two sources; n trusted IPv6
    networks that do not aggregate (IPv4's documentation ranges hold 384 non-adjacent hosts at
    most, so the trusted list is IPv6: the IPv6 chain carries both lists)."""
    allow = []
    for i in range(n):
        e = {"port": 20000 + 2 * i}
        if i % 10 == 1:
            e["proto"] = "udp"
        if i % 7 == 3:
            e["from"] = ["198.51.100.0/24", "2001:db8:77::/48"]
        allow.append(e)
    trusted = ["2001:db8:%x::/48" % (0x1000 + 2 * i) for i in range(n)]
    return {"allow": allow, "trusted_networks": trusted}


if __name__ == "__main__":
    import json
    import sys

    kind, arg = sys.argv[1], int(sys.argv[2])
    print(json.dumps(host_policy(arg) if kind == "host" else scale_policy(arg)))
