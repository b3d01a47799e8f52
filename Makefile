# A thin layer over CMake so the obvious commands work (as neovim does).
.PHONY: all release debug asan deps demo test unit lint bench format clean

all: release

deps:
	@scripts/install-deps

release debug asan: deps
	@cmake --preset $@ >/dev/null
	@cmake --build --preset $@

demo: release
	ROASTERY_DATA_DIR=$${ROASTERY_DATA_DIR:-./var} build/release/roastery demo

# Every suite: the Terraform modules parse, unit + integration (real PostgreSQL)
# in the debug build, the same again under ASan/UBSan, then the OpenAPI lint.
test: debug asan
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
	clang-format -i server/*.[ch] api/*.[ch] tests/*/*.c

clean:
	rm -rf build
