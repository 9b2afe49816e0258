# The commands a developer and CI share. `make run` and `make test` are the two
# a newcomer needs; everything else is for working on Marquee itself.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

# Pinned code-generation and lint tools, installed into ./.bin by `make tools`.
BUF_VERSION              := v1.75.0
PROTOC_GEN_GO_VERSION    := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.0
GRPC_GATEWAY_VERSION     := v2.33.0

BIN     := $(CURDIR)/.bin
export PATH := $(BIN):$(PATH)
MODULES := proto/gen/go services/platform services/auth services/catalog services/search services/gateway tools
GOTEST_FLAGS ?= -race -shuffle=on -count=1
# Short fuzzing runs in make test; longer ones with FUZZTIME=1m scripts/fuzz.sh.
FUZZTIME ?= 2s
SERVICE ?=

.PHONY: run import-wikipedia test lint generate tools deps fmt vet bench images clean

## run: start the whole dev stack (or one service alone with SERVICE=catalog)
run:
	go run ./tools/cmd/marquee dev $(if $(SERVICE),--service $(SERVICE),)

## import-wikipedia: add the 36k Wikipedia films to a running dev stack
import-wikipedia:
	go run ./tools/cmd/marquee import --dev --format wikipedia data/wikipedia-movies.ndjson.gz

## test: install what the tests need, then run every module's tests
test: deps
	@for m in $(MODULES); do \
	  echo "==> go test $$m"; \
	  (cd $$m && go test $(GOTEST_FLAGS) ./...) || exit 1; \
	done
	@echo "==> fuzz every target for $(FUZZTIME)"
	@FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

## deps: install the test dependencies that come from Debian (redis-server, chromium)
deps:
	@scripts/install-test-deps.sh

## tools: install the pinned code generators into ./.bin
tools:
	@mkdir -p $(BIN)
	@test -x $(BIN)/buf || GOBIN=$(BIN) go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
	@test -x $(BIN)/protoc-gen-go || GOBIN=$(BIN) go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	@test -x $(BIN)/protoc-gen-go-grpc || GOBIN=$(BIN) go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	@test -x $(BIN)/protoc-gen-grpc-gateway || GOBIN=$(BIN) go install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway@$(GRPC_GATEWAY_VERSION)
	@test -x $(BIN)/protoc-gen-openapiv3 || GOBIN=$(BIN) go install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv3@$(GRPC_GATEWAY_VERSION)

## generate: regenerate Go, gRPC, gateway and OpenAPI code from the protos
generate: tools
	cd proto && buf generate

## lint: protos (lint, format, breaking changes, generated-code drift) and Go (gofmt, vet)
lint: tools
	cd proto && buf lint
	cd proto && buf format --diff --exit-code --path marquee
	@if git rev-parse -q --verify HEAD~1 >/dev/null && git cat-file -e HEAD~1:proto/buf.yaml 2>/dev/null; then \
	  echo "==> buf breaking against HEAD~1"; \
	  cd proto && buf breaking --against '../.git#ref=HEAD~1,subdir=proto'; \
	else echo "==> buf breaking: no previous commit with protos"; fi
	$(MAKE) --no-print-directory generate
	@if [ -n "$$(git status --porcelain -- proto/gen)" ]; then \
	  echo "generated code is out of date: run make generate and commit"; git status --porcelain -- proto/gen; exit 1; fi
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	@for m in $(MODULES); do echo "==> go vet $$m"; (cd $$m && go vet ./...) || exit 1; done

## bench: the full benchmark suite (results go to docs/benchmarks.md)
bench:
	@mkdir -p dist
	go run ./tools/cmd/marquee bench -spawn -engine-curve 1000,10000,30000 -md docs/benchmarks.md -json $(CURDIR)/dist/bench.json

## images: build an OCI image tarball per service into dist/
images:
	@mkdir -p bin dist
	@for s in catalog search auth gateway; do \
	  echo "==> image $$s"; \
	  (cd services/$$s && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o ../../bin/$$s ./cmd/$$s); \
	  (cd tools && go run ./cmd/imagebuild -name $$s -binary ../bin/$$s -out ../dist/$$s.tar); \
	done

clean:
	rm -rf bin dist .bin
