# bbconn: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

include tests/controlplane/Makefile.include
include tests/packaging/Makefile.include
include tests/node/Makefile.include

.PHONY: test lint fmt-check clippy supplychain scripts-check unit build demo demo-down demo-check bench bench-operator crd causes

## test: everything CI runs: format, lints, drift checks and the whole suite. The end-to-end
## tests need kube-apiserver and etcd, and the discovery tests kube-controller-manager, the Argo CD
## and Flux CRDs and Flux's source-controller: built once from Go modules, cached outside the repo.
## The image build (make image) is the suite's one release build: the Dockerfile's glibc check and
## the demo the kstatus check reads use the binaries it made; the node e2e test runs its images.
test: export BBCONN_DOCKERFILE_BINARY := $(CURDIR)/target/node/images/bin/bbconn
test: export BBCONN_BIN_DIR := $(CURDIR)/target/node/images/bin
test: fmt-check clippy supplychain scripts-check controlplane consumers image packaging-test packaging-kstatus unit node-test

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## supplychain: cargo-deny's licences, duplicate versions and sources against deny.toml (advisories
## need GitHub: not checked). cargo-deny is installed once, cached outside the repo.
supplychain:
	bash tests/supplychain/deny.sh

## scripts-check: every shell script parses.
scripts-check:
	@for f in .ci/run examples/*.sh tests/controlplane/*.sh tests/packaging/*.sh tests/node/*.sh; do bash -n "$$f" || exit 1; done

unit:
	$(CARGO) test --workspace

build:
	$(CARGO) build --release --workspace --bins

## crd / causes: regenerate what the drift tests compare.
crd:
	$(CARGO) run -q --bin bbconn -- crd > crds/bbconn.dev_bitbucketconnections.yaml
	cp crds/bbconn.dev_bitbucketconnections.yaml deploy/00-crd.yaml
	cp crds/bbconn.dev_bitbucketconnections.yaml charts/bbconn/crds/
causes:
	$(CARGO) run -q --bin bbconn -- causes > docs/causes.md

## demo: a local control plane, the simulator and the operator, with examples/ applied.
demo: build controlplane
	bash examples/demo.sh

demo-down:
	bash examples/demo-down.sh

## demo-check: the same examples through `bbconn check`, without a cluster.
demo-check: build
	bash examples/demo-check.sh

## bench: `bbconn check` over 1,000 connections against the simulator, and the floor.
bench:
	$(CARGO) bench --bench check

## bench-operator: the operator with 1,000 and 10,000 connections on the local control plane,
## and discovery of 2,000 Flux GitRepositories and 2,000 Argo CD repository Secrets on 50 credentials.
bench-operator: controlplane consumers
	$(CARGO) bench --bench operator
