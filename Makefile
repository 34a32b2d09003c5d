# strata: run `make help` for the targets.

GO        ?= go
GOBIN     := $(shell $(GO) env GOPATH)/bin
BINARY    := strata
BUILD_DIR := bin
DATA_DIR  ?= ./data
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X github.com/prometheus/common/version.Version=$(VERSION) \
             -X github.com/prometheus/common/version.Revision=$(shell git rev-parse --short HEAD 2>/dev/null)
MINIO_VERSION       := v0.0.0-20260212201848-7aac2a2c5b7c
STATICCHECK_VERSION := v0.8.2
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
PROTO_FILES := $(sort $(wildcard storeapi/*pb/*.proto))
BENCH_COUNT         ?= 6
# make bench: the load sent to every system, and which systems.
BENCH_SERIES        ?= 100000
BENCH_BATCH_SIZE    ?= 2000
BENCH_CONCURRENCY   ?= 4
BENCH_DURATION      ?= 60s
BENCH_WARMUP        ?= 15s
BENCH_SYSTEMS       ?= strata-rf1,strata-rf3,prometheus,victoriametrics
BENCH_OUT           ?= docs/benchmarks.md

export PATH := $(GOBIN):$(PATH)

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/strata.
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BUILD_DIR)/$(BINARY) ./cmd/strata

.PHONY: ui
ui: ## Rebuild the web UI's assets in web/ui/dist from web/ui/src (needs node and npm; commit the result).
	cd web/ui && npm ci --no-audit --no-fund && npm run build

.PHONY: run
run: build ## Start strata up: three receivers (RF=2) and a filesystem bucket in ./data; Ctrl-C flushes and ships.
	$(BUILD_DIR)/$(BINARY) up --data-dir=$(DATA_DIR)

.PHONY: test
test: ## Run every test (needs prometheus, promtool, victoria-metrics and minio: see .ci/run).
	$(GO) test -count=1 -race -timeout 20m ./...

.PHONY: docs
docs: ## Regenerate docs/configuration.md from the flags of every command.
	$(GO) run ./cmd/strata configuration-reference > docs/configuration.md.tmp && mv docs/configuration.md.tmp docs/configuration.md

.PHONY: bench
bench: build ## Benchmark ingestion against Prometheus and VictoriaMetrics into docs/benchmarks.md (BENCH_SERIES=... etc., ~6 min).
	$(GO) run ./internal/sidebyside/cmd/sidebyside --strata=$(BUILD_DIR)/$(BINARY) --out=$(BENCH_OUT) \
		--series=$(BENCH_SERIES) --batch-size=$(BENCH_BATCH_SIZE) --concurrency=$(BENCH_CONCURRENCY) \
		--duration=$(BENCH_DURATION) --warmup=$(BENCH_WARMUP) --systems=$(BENCH_SYSTEMS)

# make bench-compact: the generated bucket the compactor is measured on.
COMPACT_SERIES   ?= 100000
COMPACT_DAYS     ?= 10
COMPACT_REPLICAS ?= 3

.PHONY: bench-compact
bench-compact: build ## Measure compaction, replica dedup and downsampling on a generated bucket (COMPACT_SERIES × COMPACT_DAYS × COMPACT_REPLICAS).
	$(GO) test -count=1 -timeout 2h -run TestCompactDataset -v ./internal/compactbench/ -args \
		-compactbench.strata=$(CURDIR)/$(BUILD_DIR)/$(BINARY) -compactbench.series=$(COMPACT_SERIES) \
		-compactbench.days=$(COMPACT_DAYS) -compactbench.replicas=$(COMPACT_REPLICAS)

# make bench-frontend: the dashboard the query frontend is measured on.
FRONTEND_HOSTS ?= 20
FRONTEND_COLD  ?= 10
FRONTEND_WARM  ?= 20
FRONTEND_OUT   ?= docs/benchmarks-frontend.md

.PHONY: bench-frontend
bench-frontend: build ## Measure a 30-day dashboard with and without the query frontend, cold and warm, into docs/benchmarks-frontend.md (~4 min).
	$(GO) test -count=1 -timeout 1h -run TestFrontendDashboard -v ./internal/frontendbench/ -args \
		-frontendbench.strata=$(CURDIR)/$(BUILD_DIR)/$(BINARY) -frontendbench.hosts=$(FRONTEND_HOSTS) \
		-frontendbench.cold=$(FRONTEND_COLD) -frontendbench.warm=$(FRONTEND_WARM) -frontendbench.out=$(CURDIR)/$(FRONTEND_OUT)

.PHONY: bench-micro
bench-micro: ## Run every package's Go benchmarks ($(BENCH_COUNT) times, for benchstat) into bench.txt.
	$(GO) test -run '^$$' -bench . -benchmem -count $(BENCH_COUNT) ./... | tee bench.txt

.PHONY: fuzz
fuzz: ## Fuzz every decoder of untrusted bytes for FUZZTIME each (default 30s).
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRW1$$' -fuzztime $(or $(FUZZTIME),30s) ./receive/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRW2$$' -fuzztime $(or $(FUZZTIME),30s) ./receive/
	$(GO) test -run '^$$' -fuzz '^FuzzForwardedRequest$$' -fuzztime $(or $(FUZZTIME),30s) ./receive/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeMatrix$$' -fuzztime $(or $(FUZZTIME),30s) ./queryfrontend/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeExtent$$' -fuzztime $(or $(FUZZTIME),30s) ./queryfrontend/
	$(GO) test -run '^$$' -fuzz '^FuzzFromForm$$' -fuzztime $(or $(FUZZTIME),30s) ./queryshard/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeChunkedResponse$$' -fuzztime $(or $(FUZZTIME),30s) ./sidecar/

.PHONY: lint
lint: ## gofmt, go vet and staticcheck.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

.PHONY: proto
proto: ## Regenerate the Store API Go code from storeapi/*pb/*.proto (needs protoc).
	@command -v protoc >/dev/null || { echo "protoc not found: install Debian's protobuf-compiler (make deps)"; exit 1; }
	@$(GOBIN)/protoc-gen-go --version 2>/dev/null | grep -qx 'protoc-gen-go $(PROTOC_GEN_GO_VERSION)' || \
		GOBIN=$(GOBIN) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	@$(GOBIN)/protoc-gen-go-grpc --version 2>/dev/null | grep -qx 'protoc-gen-go-grpc $(PROTOC_GEN_GO_GRPC_VERSION:v%=%)' || \
		GOBIN=$(GOBIN) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	protoc -I . \
		--plugin=protoc-gen-go=$(GOBIN)/protoc-gen-go --go_out=. --go_opt=paths=source_relative \
		--plugin=protoc-gen-go-grpc=$(GOBIN)/protoc-gen-go-grpc --go-grpc_out=. --go-grpc_opt=paths=source_relative \
		$(PROTO_FILES)

.PHONY: deps
deps: ## Install the test dependencies: MinIO (go install), Prometheus, Alertmanager, VictoriaMetrics and protoc (Debian).
	.ci/install-deps

.PHONY: clean
clean: ## Remove build output (not ./data).
	rm -rf $(BUILD_DIR) bench.txt
