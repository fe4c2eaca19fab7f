# Shared by scripts/run and scripts/test: find the toolchain and install
# what the project needs, quickly when it is already there.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

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
