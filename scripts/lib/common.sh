# Shared by scripts/run and scripts/test: find the toolchain and install
# what the project needs, quickly when it is already there.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# Where cargo builds (.ci/run keeps it outside the clone).
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"

say() { printf '\033[1m[banter]\033[0m %s\n' "$*" >&2; }

ensure_cargo() {
    if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        say "cargo is not installed: install Rust from https://rustup.rs (stable, 1.85 or newer) and run this again"
        exit 1
    fi
}

ensure_wasm_target() {
    if command -v rustup >/dev/null 2>&1; then
        if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
            say "installing the wasm32-unknown-unknown target"
            rustup target add wasm32-unknown-unknown >&2
        fi
    fi
}

# Versions pinned to what builds on this toolchain (see docs/web-client.md).
TRUNK_VERSION=0.21.14
WASM_BINDGEN_VERSION=0.2.130

ensure_web_tools() {
    ensure_wasm_target
    if ! trunk --version 2>/dev/null | grep -q "$TRUNK_VERSION"; then
        say "installing trunk $TRUNK_VERSION (once; takes a few minutes)"
        cargo install --locked trunk --version "$TRUNK_VERSION" >&2
    fi
    if ! wasm-bindgen --version 2>/dev/null | grep -q "$WASM_BINDGEN_VERSION"; then
        say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (once)"
        # Not --locked: its lock file names a crate version the registry no longer serves.
        cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" >&2
    fi
}

# wasm-opt (binaryen) for trunk and playwright-core for the browser tests,
# pinned in frontend/package-lock.json.
ensure_node_tools() {
    if ! command -v npm >/dev/null 2>&1; then
        apt_install nodejs npm
    fi
    local stamp="$ROOT/frontend/node_modules/.package-lock.json"
    if [ ! -f "$stamp" ] || [ "$ROOT/frontend/package-lock.json" -nt "$stamp" ]; then
        say "installing the web client's build and test tools (npm ci)"
        (cd "$ROOT/frontend" && npm ci --no-audit --no-fund --loglevel=error) >&2
    fi
    export PATH="$ROOT/frontend/node_modules/.bin:$PATH"
}

# What the web client is built from: the hash of these files decides
# whether Trunk runs again.
web_inputs_hash() {
    find frontend/src frontend/index.html frontend/Cargo.toml protocol \
        static Trunk.toml Cargo.toml Cargo.lock \
        -path protocol/target -prune -o -type f -print 2>/dev/null |
        LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1
}

# Builds the web client into frontend/dist (what banter embeds and serves),
# only when its inputs changed since the last build: Trunk rewrites every
# file of dist, and banter (which embeds dist) would then be compiled again
# on every start. The stamp lives in target/, outside dist.
build_web() {
    local stamp="$ROOT/target/web-inputs.sha256"
    local hash
    hash="$(web_inputs_hash)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$hash" ] &&
        [ -f "$ROOT/frontend/dist/index.html" ]; then
        say "web client up to date (frontend/dist)"
        # The tests still need the node tools (wasm-opt is Trunk's only).
        return 0
    fi
    ensure_web_tools
    ensure_node_tools
    say "building the web client (trunk, release)"
    trunk build --release --offline >&2
    mkdir -p "$ROOT/target"
    printf '%s\n' "$hash" >"$stamp"
}

apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    say "installing ${missing[*]} (Debian packages)"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2
}

# Headless Chromium for the browser tests; nginx (with its stream module),
# Caddy and HAProxy, real reverse proxies, for them and for
# backend/tests/proxy.rs; redis-server for the cluster tests
# (backend/tests/cluster.rs); a colour emoji font, so reactions render
# in the browser tests and in frontend/screenshots.mjs.
ensure_browser_test_tools() {
    apt_install chromium nginx libnginx-mod-stream caddy haproxy redis-server \
        fonts-noto-color-emoji
    ensure_node_tools
}

# PostgreSQL, for backend/tests/store_postgres.rs: the tests run
# throw-away servers of their own (initdb in a temporary directory, as the
# postgres user), never the cluster the package may start on port 5432.
ensure_postgres() {
    apt_install postgresql
}
