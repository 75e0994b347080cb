"""The action plugin's shell commands, run for real by /bin/sh on this machine.

Why it exists: the plugin's one-command way to run the module (plugins/action/ufw_docker.py)
is a generated POSIX shell script, and the fleet tests reach only the paths a healthy fleet
takes. Here each path runs against a scratch cache directory, with two small stand-in "builds"
(shell scripts that echo their arguments back as JSON): a miss, a copy that is cached and run,
a hit, a damaged build, a dry run that caches nothing, `state: absent` removing the cache, an
unknown architecture, and a marker found behind the noise a login shell can print first.

usage: .venv/bin/python tests/fleet/action-plugin-test.py   (imports ansible; no root needed)
"""

import importlib.util
import json
import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
spec = importlib.util.spec_from_file_location(
    "ufw_docker_action", os.path.join(REPO, "ansible/plugins/action/ufw_docker.py"))
plugin = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plugin)

PASS = FAIL = 0


def check(what, ok):
    global PASS, FAIL
    print(("PASS " if ok else "FAIL ") + what)
    PASS, FAIL = PASS + bool(ok), FAIL + (not ok)


def sh(script):
    out = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True)
    return {"rc": out.returncode, "stdout": out.stdout, "stderr": out.stderr}


def stand_in(path, name):
    """A 'build' that answers with its name and the arguments it read from the file in $1."""
    with open(path, "w") as f:
        f.write('#!/bin/sh\nprintf \'{"build": "%s", "args": %%s}\\n\' "$(cat "$1")"\n' % name)
    os.chmod(path, 0o755)
    return path


with tempfile.TemporaryDirectory() as tmp:
    plugin.CACHE_DIR = cache = os.path.join(tmp, "cache")
    builds = {"ufw_docker": stand_in(os.path.join(tmp, "x86"), "x86_64"),
              "ufw_docker_aarch64": stand_in(os.path.join(tmp, "arm"), "aarch64")}
    sha = plugin._digest(builds["ufw_docker"])
    cached = os.path.join(cache, "ufw_docker-" + sha)
    # As the plugin writes it: no single quote in the command.
    payload = json.dumps({"allow": [{"port": 8080, "comment": "it's"}]}).replace("'", "\\u0027")
    script = plugin.ActionModule._script

    def upload():  # what the plugin's copy leaves in the host's temporary directory
        d = tempfile.mkdtemp(dir=tmp)
        u = os.path.join(d, "ufw_docker")
        with open(builds["ufw_docker"], "rb") as src, open(u, "wb") as dst:
            dst.write(src.read())
        return d, u

    res = sh(script("x86_64", builds, payload, "", purge=False))
    check("an empty cache is a miss, naming the architecture",
          plugin._marker(res, plugin.MISS) == "x86_64" and res["rc"] == 0)

    d, u = upload()
    res = sh(script("x86_64", builds, payload, "", purge=False, upload=u, cache=False, tmpdir=d))
    out = json.loads(res["stdout"])
    check("a dry run runs the copy with the arguments, whole", res["rc"] == 0 and
          out == {"build": "x86_64", "args": {"allow": [{"port": 8080, "comment": "it's"}]}})
    check("  caches nothing and removes its temporary directory",
          not os.path.exists(cache) and not os.path.exists(d))

    d, u = upload()
    res = sh(script("x86_64", builds, payload, "LANG=C", purge=False, upload=u, cache=True, tmpdir=d))
    check("a real run caches the copy and runs it", res["rc"] == 0 and
          json.loads(res["stdout"])["build"] == "x86_64" and os.listdir(cache) == [os.path.basename(cached)])
    check("  the cache is root's alone (0700) and its temporary directory is gone",
          os.stat(cache).st_mode & 0o777 == 0o700 and not os.path.exists(d))

    res = sh(script(None, builds, payload, "", purge=False))
    check("the next run is a hit: it runs the cached build (architecture from uname -m)",
          res["rc"] == 0 and json.loads(res["stdout"])["build"] == "x86_64")

    with open(os.path.join(cache, "ufw_docker-" + "0" * 64), "w") as f:
        f.write("an older release")
    d, u = upload()
    sh(script("x86_64", builds, payload, "", purge=False, upload=u, cache=True, tmpdir=d))
    check("caching a build removes older ones", os.listdir(cache) == [os.path.basename(cached)])

    with open(cached, "a") as f:
        f.write("x")
    res = sh(script("x86_64", builds, payload, "", purge=False))
    check("a damaged build is a miss", plugin._marker(res, plugin.MISS) == "x86_64")
    d, u = upload()
    sh(script("x86_64", builds, payload, "", purge=False, upload=u, cache=True, tmpdir=d))
    res = sh(script("x86_64", builds, payload, "", purge=True))
    check("state: absent runs the cached build, then removes the cache",
          res["rc"] == 0 and json.loads(res["stdout"])["build"] == "x86_64" and not os.path.exists(cache))

    res = sh(script("sparc64", builds, payload, "", purge=False))
    check("an unknown architecture says which, and runs nothing",
          plugin._marker(res, plugin.UNKNOWN_ARCH) == "sparc64" and "build" not in res["stdout"])

    noisy = {"stdout": "pyenv: cannot rehash: /root/.pyenv/shims isn't writable\r\n"
                       + plugin.MISS + " aarch64\r\n"}
    check("the marker is found behind a login shell's noise", plugin._marker(noisy, plugin.MISS) == "aarch64")
    check("module output is not a marker", plugin._marker({"stdout": '{"changed": false}\n'}, plugin.MISS) is None)

print("%d passed, %d failed" % (PASS, FAIL))
sys.exit(1 if FAIL else 0)
