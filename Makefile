# Build, test and run the offline push service (README.md).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

# FUNCTIONS names the Lambda functions by their directory under functions/.
# A function's logical id in template.yaml is its name in CamelCase plus
# "Function" (dispatch-apns ↔ DispatchApnsFunction), the rule that
# cfn.FunctionDir implements, so adding a function means adding its name here
# and its resource to the template.
FUNCTIONS := devices settings ingest cleanup \
	dispatch-apns dispatch-fcm dispatch-huawei dispatch-honor \
	dispatch-xiaomi dispatch-oppo dispatch-vivo dispatch-meizu

# One static arm64 binary per function for the provided.al2023 runtime;
# lambda.norpc drops the RPC mode that only the go1.x runtime used.
GOBUILD := CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -trimpath -tags lambda.norpc -ldflags='-s -w'

# Packages where concurrency lives run under the race detector; the others
# run without it to keep CI well inside its budget on two cores. Directories
# that do not exist yet are skipped.
RACE_DIRS := shared/devices shared/presence shared/httpapi shared/dynamo shared/testenv shared/ingest shared/queue shared/dispatch shared/sqsbatch shared/provider shared/emulator
RACE_PKGS := $(foreach d,$(RACE_DIRS),$(if $(wildcard $(d)),./$(d)/...))

# How long each fuzz target runs in `make test`.
FUZZTIME := 5s

.PHONY: build run test unit fuzz bench lint clean FORCE

## build: every function into .build/<name>/bootstrap
build: $(FUNCTIONS:%=.build/%/bootstrap)

.build/%/bootstrap: FORCE
	$(GOBUILD) -o $@ ./functions/$*

# sam build (BuildMethod: makefile, CodeUri: .) runs `make build-<LogicalId>`
# with ARTIFACTS_DIR set; the stem is turned back into the directory name.
build-%Function:
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set (sam build sets it)" >&2; exit 1; }
	$(GOBUILD) -o "$(ARTIFACTS_DIR)/bootstrap" ./functions/$(shell echo '$*' | sed -E 's/([a-z0-9])([A-Z])/\1-\2/g' | tr '[:upper:]' '[:lower:]')

## run: the whole stack on this machine (API.md §8)
run:
	@if [ -z "$${AWS_ENDPOINT_URL:-}" ] && ! command -v moto_server >/dev/null; then \
		pip install 'moto[server]'; \
	fi
	@go run ./scripts/localstack

## test: lint, every test (race detector where concurrency lives), a short fuzz of every target
test: lint unit fuzz

unit:
	all="$$(go list ./...)"; \
	race="$$(go list $(RACE_PKGS))"; \
	rest="$$(grep -vxF -f <(printf '%s\n' "$$race") <<<"$$all" || true)"; \
	if [ -n "$$race" ]; then go test -race $$race; fi; \
	if [ -n "$$rest" ]; then go test $$rest; fi

# Fuzz targets are discovered, since every package may add its own.
fuzz:
	go run ./scripts/fuzzall -fuzztime=$(FUZZTIME)

## fuzz-long: every fuzz target for FUZZLONGTIME each (default 60s), one after
## another, then a table of execs, new interesting inputs and results
FUZZLONGTIME := 60s
.PHONY: fuzz-long
fuzz-long:
	go run ./scripts/fuzzall -fuzztime=$(FUZZLONGTIME)

## load: drive the local stack at a steady rate with vendor faults, then check
## that every push reached exactly one outcome (README "Load run"); pass
## flags in LOADFLAGS, e.g. make load LOADFLAGS='-throttle 0.1'
LOADFLAGS ?=
.PHONY: load
load:
	@if [ -z "$${AWS_ENDPOINT_URL:-}" ] && ! command -v moto_server >/dev/null; then \
		pip install 'moto[server]'; \
	fi
	go run ./scripts/load -logs build/load $(LOADFLAGS)

## bench: benchmarks; they report and never fail on a timing
bench:
	rm -rf build/bench
	CGO_ENABLED=0 go build -trimpath -tags lambda.norpc -ldflags='-s -w' -o build/bench/bin/ ./functions/... ./scripts/coldstart/bare
	$(GOBUILD) -o build/bench/arm64/ ./functions/... ./scripts/coldstart/bare
	go run ./scripts/benchreport -dir build/bench

## lint: formatting, vet, the template, and the dependency rules of STYLE.md
lint:
	@unformatted="$$(gofmt -l .)"; \
	if [ -n "$$unformatted" ]; then echo "not gofmt-formatted:" >&2; echo "$$unformatted" >&2; exit 1; fi
	go vet ./...
	cfn-lint template.yaml
	go run ./scripts/lintdeps

clean:
	rm -rf .build .aws-sam

FORCE:
