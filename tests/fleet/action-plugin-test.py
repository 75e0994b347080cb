"""The action plugin's shell commands, run for real by /bin/sh on this machine.

Why it exists: the plugin's way to run the module (plugins/action/ufw_docker.py) is a generated
POSIX shell script, run as root, and the fleet tests reach only the paths a healthy fleet takes.
Here each path runs against a scratch cache directory, with two small stand-in "builds" (shell
scripts that echo back, as JSON, the arguments they read from standard input or from the file in
$1): a miss, a copy that is checked, cached and run, a hit, a build sent on standard input
ahead of the arguments (checked, cached, run; refused when it is not the build or cut short), a damaged build, a copy replaced on
its way (never run), a dry run that caches nothing, `state: absent` removing the cache, a cache
directory that is not root's own, an unknown architecture, arguments that a shell would expand,
and a marker found behind the noise a login shell can print first.

usage: .venv/bin/python tests/fleet/action-plugin-test.py   (imports ansible; run as root: it
chowns a scratch directory to check that a cache not owned by root is never trusted)
"""

import importlib.util
import json
import os
import shutil
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


def sh(script, stdin=""):
    out = subprocess.run(["/bin/sh", "-c", script], input=stdin, capture_output=True, text=True)
    return {"rc": out.returncode, "stdout": out.stdout, "stderr": out.stderr}


def stand_in(path, name):
    """A 'build' that answers with its name and the arguments it read."""
    with open(path, "w") as f:
        f.write('#!/bin/sh\nif [ -n "$1" ]; then a=$(cat "$1"); else a=$(cat); fi\n'
                'printf \'{"build": "%s", "args": %%s}\\n\' "$a"\n' % name)
    os.chmod(path, 0o755)
    return path


def answer(res):
    try:
        return json.loads(res["stdout"])
    except ValueError:
        return None


if os.geteuid() != 0:
    sys.exit("action-plugin-test: run as root (the cache checks chown a scratch directory)")

with tempfile.TemporaryDirectory() as tmp:
    plugin.CACHE_DIR = cache = os.path.join(tmp, "cache")
    builds = {"x86_64": stand_in(os.path.join(tmp, "x86"), "x86_64"),
              "aarch64": stand_in(os.path.join(tmp, "arm"), "aarch64")}
    digests = {arch: plugin._digest(path) for arch, path in builds.items()}
    cached = os.path.join(cache, "ufw_docker-" + digests["x86_64"])
    # Strings a shell would expand or end a here-document at, if the arguments were in the command.
    args = {"allow": [{"port": 8080, "comment": "it's $(touch %s/pwned) `touch %s/pwned` $HOME"
                       % (tmp, tmp)}],
            "log_prefix": "EOF\nUFW_DOCKER_ARGS\n'\"\\"}
    payload = json.dumps(args)
    script = plugin.script

    def upload(arch="x86_64"):  # what the plugin's copy leaves in the host's temporary directory
        d = tempfile.mkdtemp(dir=tmp)
        u = os.path.join(d, "ufw_docker")
        shutil.copyfile(builds[arch], u)
        return d, u

    res = sh(script("x86_64", digests), payload)
    check("an empty cache is a miss, naming the architecture, and runs nothing",
          plugin._marker(res, plugin.MISS) == "x86_64" and res["rc"] == 0 and answer(res) is None)

    d, u = upload()
    res = sh(script("x86_64", digests, upload=u, cache=False, tmpdir=d), payload)
    check("a dry run runs a checked copy with the arguments from stdin, whole and unexpanded",
          res["rc"] == 0 and answer(res) == {"build": "x86_64", "args": args})
    check("  nothing the arguments spell was run", not os.path.exists(os.path.join(tmp, "pwned")))
    check("  caches nothing (the cache directory it made is gone) and removes its temporary "
          "directory", not os.path.exists(cache) and not os.path.exists(d))

    d, u = upload()
    res = sh(script("x86_64", digests, env="LANG=C", upload=u, cache=True, tmpdir=d), payload)
    check("a real run caches the checked copy and runs it", res["rc"] == 0 and
          (answer(res) or {}).get("build") == "x86_64" and os.listdir(cache) == [os.path.basename(cached)])
    check("  the cache is root's alone (0700, the build 0700) and its temporary directory is gone",
          os.stat(cache).st_mode & 0o777 == 0o700 and os.stat(cached).st_mode & 0o777 == 0o700
          and not os.path.exists(d))

    res = sh(script(None, digests), payload)
    check("the next run is a hit: it runs the cached build (architecture from uname -m)",
          res["rc"] == 0 and answer(res) == {"build": "x86_64", "args": args})

    # The build on standard input, ahead of the arguments (where stdin reaches root).
    def streamed(arch="x86_64"):
        with open(builds[arch], "rb") as f:
            return f.read()

    def sh_bytes(script, stdin):
        out = subprocess.run(["/bin/sh", "-c", script], input=stdin, capture_output=True)
        return {"rc": out.returncode, "stdout": out.stdout.decode(), "stderr": out.stderr.decode()}

    shutil.rmtree(cache)
    b = streamed()
    res = sh_bytes(script("x86_64", digests, streamed=len(b), cache=False), b + payload.encode())
    check("a streamed build on a dry run: checked, run with the arguments that follow it, whole",
          res["rc"] == 0 and answer(res) == {"build": "x86_64", "args": args})
    check("  and caches nothing (the cache directory it made is gone)", not os.path.exists(cache))
    res = sh_bytes(script("x86_64", digests, env="LANG=C", streamed=len(b), cache=True),
                   b + payload.encode())
    check("a streamed build on a real run is cached (0700) and run",
          res["rc"] == 0 and answer(res) == {"build": "x86_64", "args": args}
          and os.listdir(cache) == [os.path.basename(cached)]
          and os.stat(cached).st_mode & 0o777 == 0o700)
    os.remove(cached)
    other = streamed("aarch64")
    res = sh_bytes(script("x86_64", digests, streamed=len(other), cache=True), other + payload.encode())
    check("a streamed build that is not the one the hash names: BAD_COPY, nothing run or cached",
          plugin._marker(res, plugin.BAD_COPY) == "x86_64" and '"build"' not in res["stdout"]
          and os.listdir(cache) == [])
    res = sh_bytes(script("x86_64", digests, streamed=len(b) - 1, cache=True), b + payload.encode())
    check("a streamed build cut one byte short: BAD_COPY, nothing run or cached",
          plugin._marker(res, plugin.BAD_COPY) == "x86_64" and '"build"' not in res["stdout"]
          and os.listdir(cache) == [])
    os.chown(cache, 65534, 65534)
    res = sh_bytes(script("x86_64", digests, streamed=len(b), cache=True), b * 64 + payload.encode())
    check("a streamed build into a cache not owned by root: the setup fails, nothing runs, and "
          "the input is drained", res["rc"] == 1 and "not a directory owned by root"
          in (plugin._marker(res, plugin.SETUP_FAILED) or "") and '"build"' not in res["stdout"])
    os.chown(cache, 0, 0)
    res = sh_bytes(script("x86_64", digests, streamed=len(b), cache=True), b + payload.encode())
    check("  (after which a streamed build caches as before)",
          res["rc"] == 0 and os.listdir(cache) == [os.path.basename(cached)])

    d = tempfile.mkdtemp(dir=tmp)
    args_file = os.path.join(d, "args")
    with open(args_file, "w") as f:
        f.write(payload)
    res = sh(script("x86_64", digests, args_file=args_file, tmpdir=d))
    check("without stdin, the arguments come from the file, whose directory is removed after",
          answer(res) == {"build": "x86_64", "args": args} and not os.path.exists(d))

    d, u = upload()
    res = sh(script("x86_64", digests, upload=u, cache=False, tmpdir=d), payload)
    check("a dry run beside a cache leaves the cache as it was",
          res["rc"] == 0 and os.listdir(cache) == [os.path.basename(cached)])

    with open(os.path.join(cache, "ufw_docker-" + "0" * 64), "w") as f:
        f.write("an older release")
    d, u = upload()
    sh(script("x86_64", digests, upload=u, cache=True, tmpdir=d), payload)
    check("caching a build removes older ones", os.listdir(cache) == [os.path.basename(cached)])

    with open(cached, "a") as f:
        f.write("x")
    res = sh(script("x86_64", digests), payload)
    check("a damaged cached build is a miss, not run", plugin._marker(res, plugin.MISS) == "x86_64"
          and answer(res) is None)

    d, u = upload("aarch64")  # the copy in the user's directory is not the build the hash names
    res = sh(script("x86_64", digests, upload=u, cache=True, tmpdir=d), payload)
    check("a copy replaced on its way is refused: BAD_COPY, nothing run, nothing cached",
          plugin._marker(res, plugin.BAD_COPY) == "x86_64" and '"build"' not in res["stdout"]
          and not os.path.exists(d) and not any(n.startswith(".new") for n in os.listdir(cache)))

    os.remove(cached)
    os.symlink(builds["x86_64"], cached)
    res = sh(script("x86_64", digests), payload)
    check("a link in place of the cached build is a miss, even to the right content",
          plugin._marker(res, plugin.MISS) == "x86_64")
    os.remove(cached)

    d, u = upload()
    sh(script("x86_64", digests, upload=u, cache=True, tmpdir=d), payload)
    os.chown(cache, 65534, 65534)
    res = sh(script("x86_64", digests), payload)
    check("a cache directory not owned by root is not trusted: a miss",
          plugin._marker(res, plugin.MISS) == "x86_64")
    d, u = upload()
    res = sh(script("x86_64", digests, upload=u, cache=True, tmpdir=d), payload)
    check("  and the copy is not put there: the setup fails, saying why, and nothing runs",
          res["rc"] == 1 and "not a directory owned by root" in (plugin._marker(res, plugin.SETUP_FAILED) or "")
          and '"build"' not in res["stdout"])
    os.chown(cache, 0, 0)

    d, u = upload()
    sh(script("x86_64", digests, upload=u, cache=True, tmpdir=d), payload)
    res = sh(script("x86_64", digests, purge=True), payload)
    check("state: absent runs the cached build, then removes the cache",
          res["rc"] == 0 and (answer(res) or {}).get("build") == "x86_64" and not os.path.exists(cache))

    res = sh(script("sparc64", digests), payload)
    check("an unknown architecture says which, and runs nothing",
          plugin._marker(res, plugin.UNKNOWN_ARCH) == "sparc64" and "build" not in res["stdout"])

    check("no argument ever appears in a command",
          all(payload not in script(a, digests, upload=u, cache=c, tmpdir=d, purge=p)
              and "8080" not in script(a, digests, upload=u, cache=c, tmpdir=d, purge=p)
              and payload not in script(a, digests, streamed=1024, cache=c, purge=p)
              for a in ("x86_64", None) for c in (True, False) for p in (True, False)))

    noisy = {"stdout": "pyenv: cannot rehash: /root/.pyenv/shims isn't writable\r\n"
                       + plugin.MISS + " aarch64\r\n"}
    check("the marker is found behind a login shell's noise", plugin._marker(noisy, plugin.MISS) == "aarch64")
    check("module output is not a marker", plugin._marker({"stdout": '{"changed": false}\n'}, plugin.MISS) is None)

print("%d passed, %d failed" % (PASS, FAIL))
sys.exit(1 if FAIL else 0)
