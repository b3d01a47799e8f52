# A thin layer over CMake so the obvious commands work (as neovim does).
.PHONY: all release release-clang debug asan deps demo demo-smoke test unit lint bench format clean

all: release

deps:
	@scripts/install-deps

release release-clang debug asan: deps
	@cmake --preset $@ >/dev/null
	@cmake --build --preset $@

# The JSON log goes to $ROASTERY_DATA_DIR/roastery.log; the terminal says what is set up.
demo: release
	@ROASTERY_DATA_DIR=$${ROASTERY_DATA_DIR:-./var} build/release/roastery demo

# What CI checks of `make demo`: scripts/demo-smoke runs it on a fresh data directory.
demo-smoke:
	scripts/demo-smoke

# Every suite: the Terraform modules parse, unit + integration (real PostgreSQL)
# in the debug build, the same again under ASan/UBSan, then the OpenAPI lint.
# release-clang is built too, so that with `make demo`'s release (gcc -O3) every
# target compiles warning-free under gcc and clang at -O0 and -O3.
test: debug asan release-clang
	scripts/lint-terraform
	scripts/with-temp-pg ctest --preset debug
	scripts/with-temp-pg ctest --preset asan
	scripts/lint-openapi

unit: debug
	ctest --preset debug -L unit

bench: release
	bench/run
	bench/ingest

format:
	clang-format -i $$(git ls-files 'server/*.[ch]' 'api/*.[ch]' 'tests/*.[ch]')

clean:
	rm -rf build
