# IoT Center (serverless, Go). `make run` and `make test` are the two entry points; see README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# SAM's `BuildMethod: makefile` calls build-<LogicalId> with ARTIFACTS_DIR set, in the caller's environment. The
# functions' architecture is template.yaml's Architectures parameter: LAMBDA_ARCHITECTURE holds the same value
# (default arm64, the deployed one; `make sam-local` sets x86_64 on an x86 host for both). The shell's GOARCH is never
# read; a command-line LAMBDA_GOARCH=... still wins (cmd/localapi passes its host's for the emulator). A test holds
# the default equal to the template's.
LAMBDA_ARCHITECTURE ?= arm64
ifeq ($(filter $(LAMBDA_ARCHITECTURE),arm64 x86_64),)
$(error LAMBDA_ARCHITECTURE must be arm64 or x86_64 (template.yaml's Architectures), got "$(LAMBDA_ARCHITECTURE)")
endif
LAMBDA_GOARCH = $(if $(filter x86_64,$(LAMBDA_ARCHITECTURE)),amd64,arm64)
ARTIFACTS_DIR ?= build/$(LAMBDA_GOARCH)/$@
GO_BUILD = GOOS=linux GOARCH=$(LAMBDA_GOARCH) CGO_ENABLED=0 go build -tags lambda.norpc -trimpath -ldflags "-s -w" -o $(ARTIFACTS_DIR)/bootstrap

# Every AWS::Serverless::Function logical id in template.yaml (a test checks both lists agree).
FUNCTIONS := AuthorizerFunction EnvConfigFunction RegisterFunction DevicesFunction DeleteFunction \
	WriteMissingFunction BackfillWorkerFunction QueryFunction HealthFunction UiFunction SetupFunction FleetHealthFunction \
	WriteGatewayFunction OverviewFunction PurgeFunction

INFLUXD = bash scripts/influxd/build-influxd.sh
TEST_TIMEOUT ?= 45m

.PHONY: help build test lint vet fmt run sam-env sam-local check-deploy bench influxd ui tools clean chromium e2e $(addprefix build-,$(FUNCTIONS))

help:
	@echo "make run    - local API on http://127.0.0.1:3000 over a real InfluxDB (builds what it needs)"
	@echo "make sam-env - one-time setup for sam local: prepares INFLUX_URL's InfluxDB, writes env.json"
	@echo "make sam-local - sam build + sam local start-api for this machine's architecture (README \"SAM CLI\")"
	@echo "make check-deploy PARAMS='InfluxUrl=... InfluxOrg=...' - check parameters, SSM and InfluxDB before sam deploy"
	@echo "make test   - lint + all tests against a real InfluxDB (builds influxd on first run)"
	@echo "make bench  - benchmarks, printed as a table"
	@echo "make build  - build every function's bootstrap ($(LAMBDA_GOARCH)) into build/"
	@echo "make influxd - build or find the InfluxDB server and print its path"

build-AuthorizerFunction:
	$(GO_BUILD) ./functions/authorizer
build-EnvConfigFunction:
	$(GO_BUILD) ./functions/envconfig
build-RegisterFunction:
	$(GO_BUILD) ./functions/register
build-DevicesFunction:
	$(GO_BUILD) ./functions/devices
build-DeleteFunction:
	$(GO_BUILD) ./functions/delete
build-PurgeFunction:
	$(GO_BUILD) ./functions/purge
build-WriteMissingFunction:
	$(GO_BUILD) ./functions/writemissing
build-BackfillWorkerFunction:
	$(GO_BUILD) ./functions/backfillworker
build-FleetHealthFunction:
	$(GO_BUILD) ./functions/fleethealth
build-QueryFunction:
	$(GO_BUILD) ./functions/query
build-WriteGatewayFunction:
	$(GO_BUILD) ./functions/writegateway
build-OverviewFunction:
	$(GO_BUILD) ./functions/overview
build-HealthFunction:
	$(GO_BUILD) ./functions/health
build-SetupFunction:
	$(GO_BUILD) ./functions/setup
build-UiFunction: ui
	$(GO_BUILD) ./functions/ui

# The dashboard's front end, bundled into functions/ui/dist (embedded in the ui bootstrap). npm ci runs again
# whenever package-lock.json is newer than the last install (npm writes node_modules/.package-lock.json). The bundle
# is rebuilt only when a source is newer than dist/index.html: every build-UiFunction (the local API builds it for
# each test that starts one) would otherwise replace dist while another package's go build embeds it.
UI_SOURCES := $(shell find web/src -type f 2>/dev/null) $(wildcard web/build.mjs web/package.json web/package-lock.json web/tsconfig.json)
ui: functions/ui/dist/index.html
functions/ui/dist/index.html: $(UI_SOURCES)
	@if [ -f web/package.json ]; then cd web && { [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund; } && npm run --silent build; fi

build:
	@for f in $(FUNCTIONS); do $(MAKE) --no-print-directory build-$$f ARTIFACTS_DIR=build/$(LAMBDA_GOARCH)/$$f || exit 1; done

influxd:
	@$(INFLUXD) path

tools:
	@go build -o bin/aws-lambda-rie github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	go vet ./...

lint: vet
	@unformatted=$$(gofmt -l $$(find . -name "*.go" -not -path "./web/*" -not -path "./.local/*")); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	cfn-lint template.yaml
	@if [ -f openapi.yaml ]; then openapi-spec-validator openapi.yaml; fi

# Everything: lint, the Go tests (real influxd, real bootstraps under the emulator), then the dashboard in a real
# browser against `make run`.
# The packages whose concurrency matters (caches, limiter, registry, job store, the local runner) run under the race
# detector; the rest without it, since a -race build of every package costs several times the plain one.
RACE_PKGS := ./shared/gateway/ ./shared/presence/ ./shared/registry/ ./shared/deviceapi/ ./shared/authz/ ./shared/backfill/ ./shared/api/ \
	$(wildcard ./shared/store/) ./cmd/localapi/internal/...
test: lint tools ui
	@bin=$$($(INFLUXD) path) && echo "influxd: $$bin" && \
	  race=$$(go list $(RACE_PKGS)) && rest=$$(go list ./... | grep -vxF "$$race") && \
	  export INFLUXD_BIN=$$bin RIE_BIN=$(CURDIR)/bin/aws-lambda-rie && \
	  go test -race -count=1 -timeout $(TEST_TIMEOUT) $$race && \
	  go test -count=1 -timeout $(TEST_TIMEOUT) $$rest
	@$(MAKE) --no-print-directory e2e

# Debian's Chromium for the browser test (the npm playwright download cannot reach its CDN from here).
chromium:
	@command -v chromium >/dev/null 2>&1 || { echo "installing Debian's chromium (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The dashboard's unit tests (node:test), then its browser end-to-end test (Debian chromium, headless) against
# `make run` on free ports.
e2e: chromium ui
	cd web && npm test --silent
	bash web/e2e/run.sh

# The local API (cmd/localapi): built, then exec'd so Ctrl-C/SIGTERM reach it directly. Extra flags, e.g.
# LOCALAPI_FLAGS="-pool 3 -pool-for EnvConfigFunction=4 -env-vars env.json -parameter-overrides DeviceAuth=none".
LOCALAPI_FLAGS ?=
# The same env.json as `sam local start-api --env-vars env.json`, when it exists.
ENV_JSON ?= $(wildcard env.json)
run: tools ui
	@go build -o bin/localapi ./cmd/localapi && exec bin/localapi -state .local $(if $(ENV_JSON),-env-vars $(ENV_JSON)) $(LOCALAPI_FLAGS)

# `sam local`'s one-time setup: prepares the InfluxDB in INFLUX_URL/INFLUX_ORG/INFLUX_TOKEN (admin) with the custom
# resource's code and writes env.json (each function's own token). See docs/sam-local.md.
sam-env:
	@go run ./cmd/localapi -sam-env env.json

# `sam local start-api` on this machine: Docker runs the host's architecture only (arm64 images on an x86 host need
# QEMU), so build and run the functions for it (Architectures parameter and LAMBDA_ARCHITECTURE together; deploys
# keep arm64). samconfig.toml adds host.docker.internal:host-gateway; SAM_LOCAL_FLAGS adds flags, e.g. --port 3001.
HOST_ARCHITECTURE := $(if $(filter aarch64 arm64,$(shell uname -m)),arm64,x86_64)
SAM ?= sam
SAM_LOCAL_FLAGS ?=
sam-local:
	@test -f env.json || { echo 'env.json is missing: run make sam-env first (docs/sam-local.md)'; exit 1; }
	LAMBDA_ARCHITECTURE=$(HOST_ARCHITECTURE) $(SAM) build --parameter-overrides Architectures=$(HOST_ARCHITECTURE)
	$(SAM) local start-api --env-vars env.json --parameter-overrides Architectures=$(HOST_ARCHITECTURE) $(SAM_LOCAL_FLAGS)

# Before `sam deploy`: parameter values as CloudFormation checks them, the SSM SecureStrings, the token against
# InfluxUrl. PARAMS='InfluxUrl=https://… InfluxOrg=…' (later samconfig.toml's parameter_overrides).
PARAMS ?=
check-deploy:
	@go run ./cmd/localapi -check-deploy -parameter-overrides "$(PARAMS)"

# Benchmarks hold the speed and memory goals; each runs once (-benchtime 1x) and reports its own figures.
bench: tools ui
	@bin=$$($(INFLUXD) path) && set -o pipefail && \
	  INFLUXD_BIN=$$bin RIE_BIN=$(CURDIR)/bin/aws-lambda-rie go test -run '^$$' -bench . -benchtime 1x -timeout 60m ./... \
	  | go run ./cmd/benchtable

clean:
	rm -rf build bin
