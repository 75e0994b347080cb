# The project's entry points. Each target installs what it needs on a fresh Debian or Ubuntu
# machine (as root) before it runs.
#
#   make demo   the lab: Docker hosts in network namespaces, the exposure table before and after
#   make test   everything CI runs: lint, static build, unit and namespace integration tests
#   make build  the static release binary (x86_64 musl)
#   make fuzz   bounded libFuzzer runs of the argument and after.rules parsers (FUZZ_SECONDS)
#   make bench  the module and the role measured in network namespaces; writes BENCHMARKS.md
#               (not a test: nothing asserts a timing)
#   make soak   minutes of churn on the bed (Docker 28 and 20.10) under continuous probes; fails
#               when a blocked port connects, an allowed one is refused during a module run or
#               after.rules loses a byte (SOAK_SECONDS per Docker version, default 90)
#   make release  dist/: the collection tarball, both static binaries, their third-party
#               licenses and SHA256SUMS, checked (UFW_DOCKER_REPOSITORY: the public https address)
#   make compat the collection on every ansible-core from 2.15 to 2.20 (docs, sanity, the role)
#   make licenses  cargo-deny's check of the crates; dist/THIRD-PARTY-LICENSES.md
#   make changelog the changelog's fragments linted, CHANGELOG.md regenerated and compared

.PHONY: all build test demo deps lint fuzz bench soak release compat licenses changelog

all: build

deps:
	scripts/deps.sh

build: deps
	scripts/build.sh

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

test:
	scripts/test.sh

# DEMO_DOCKER: 20 or 28; DEMO_BACKEND: nft or legacy.
DEMO_DOCKER ?= 28
DEMO_BACKEND ?= nft
demo: build
	tests/bed/install-deps.sh
	cargo run --quiet --release --example lab -- $(DEMO_DOCKER) $(DEMO_BACKEND)

fuzz: deps
	scripts/fuzz.sh

bench: deps
	scripts/bench.sh

soak: deps
	scripts/soak.sh

release:
	scripts/release.sh

licenses:
	scripts/licenses.sh --list dist/THIRD-PARTY-LICENSES.md

changelog:
	scripts/changelog-check.sh

compat: deps
	scripts/compat.sh
