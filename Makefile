# Herald's two commands. Each installs what it needs first (skipping what is present).
#   make run   - build the release console and start Herald on SQLite at http://127.0.0.1:3000
#   make test  - every test: unit, storage conformance (SQLite and PostgreSQL), API, Playwright
SHELL := /bin/bash
export PATH := $(CURDIR)/end2end/node_modules/.bin:$(HOME)/.cargo/bin:$(PATH)

.PHONY: run test lint tools bench

run:
	@scripts/build-site.sh release
	@echo "Starting Herald at http://127.0.0.1:3000 (private webhook targets allowed for local development)"
	HERALD_ALLOW_PRIVATE_TARGETS=true ./target/release/herald serve

test:
	@scripts/test.sh

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

tools:
	@scripts/install-tools.sh test
