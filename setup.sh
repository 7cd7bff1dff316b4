#!/usr/bin/env bash
# auction-trader set-up. Two commands cover everything (see README):
#
#   bash setup.sh demo    set up, then run the main job on the embedded default data
#   bash setup.sh test    set up, then run every test (cargo test + pytest); extra args go to pytest
#
# Set-up is idempotent: the virtual environment (.venv), the Python dependencies and the Rust
# extension are rebuilt only when their inputs changed, so a second run starts the job at once.
# Needs: Python >= 3.12 (nautilus_trader 1.231.0) and a Rust toolchain (cargo, rustc).
# PYTHON=/path/to/python3.12 picks the interpreter explicitly.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
VPY="$VENV/bin/python"
STAMPS="$VENV/.auction-trader"

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

# -- Python >= 3.12 --------------------------------------------------------------------------------

python_ok() {  # prints the version when "$1" is a working Python >= 3.12 with venv support
    "$1" - <<'PY' 2>/dev/null
import sys
if sys.version_info < (3, 12):
    raise SystemExit(1)
import venv, ensurepip  # noqa: F401  (Debian ships these separately)
print("%d.%d.%d" % sys.version_info[:3])
PY
}

find_python() {
    if [[ -n "${PYTHON:-}" ]]; then
        command -v "$PYTHON" >/dev/null 2>&1 || die "PYTHON=$PYTHON is not an executable."
        python_ok "$PYTHON" >/dev/null || die "PYTHON=$PYTHON is not Python >= 3.12 with the venv module \
($("$PYTHON" --version 2>&1 || true)). auction-trader needs Python >= 3.12 for nautilus_trader 1.231.0."
        echo "$PYTHON"; return
    fi
    local c pyenv_root seen=""
    for c in python3.14 python3.13 python3.12 python3 python; do
        if command -v "$c" >/dev/null 2>&1; then
            seen+=" $c=$("$c" --version 2>&1 | head -n1 | tr ' ' '_')"
            if python_ok "$c" >/dev/null; then command -v "$c"; return; fi
        fi
    done
    # pyenv installs that are not the active version (its shims refuse to run them).
    pyenv_root="$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"
    for c in "$pyenv_root"/versions/3.1[2-9]*/bin/python3 /usr/local/bin/python3.1[2-9] /opt/*/bin/python3.1[2-9]; do
        [[ -x "$c" ]] && python_ok "$c" >/dev/null && { echo "$c"; return; }
    done
    die "no Python >= 3.12 found (looked at:${seen:- nothing on PATH}, and pyenv versions under $pyenv_root).
        auction-trader needs Python >= 3.12 because nautilus_trader 1.231.0 does.
        Install one (e.g. 'pyenv install 3.12' or your OS package python3.12 + python3.12-venv),
        or point PYTHON at it: PYTHON=/path/to/python3.12 bash setup.sh ..."
}

# -- Rust -----------------------------------------------------------------------------------------

check_rust() {
    command -v cargo >/dev/null 2>&1 && command -v rustc >/dev/null 2>&1 || die "no Rust toolchain found \
(cargo and rustc are needed to build rust_indicators). Install it from https://rustup.rs, then re-run."
}

# -- environment ----------------------------------------------------------------------------------

hash_of() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }

ensure_venv() {
    if [[ -x "$VPY" ]] && python_ok "$VPY" >/dev/null; then return; fi
    local py; py="$(find_python)"
    [[ -e "$VENV" ]] && { say "existing .venv is unusable (not Python >= 3.12); recreating it"; rm -rf "$VENV"; }
    say "creating .venv with $py (Python $(python_ok "$py"))"
    "$py" -m venv "$VENV"
    "$VPY" -m pip install --quiet --upgrade pip
}

ensure_python_deps() {
    local want; want="$(hash_of pyproject.toml constraints.txt)"
    if [[ "$(cat "$STAMPS.deps" 2>/dev/null)" == "$want" ]]; then return; fi
    say "installing Python dependencies into .venv (nautilus_trader 1.231.0, pydantic, pyarrow, ...)"
    # PYTHONWARNINGS: setuptools warns on every editable install about same-named folders; noise here.
    PYTHONWARNINGS=ignore "$VPY" -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
    echo "$want" > "$STAMPS.deps"
}

ensure_rust_extension() {
    local want; want="$(find rust_indicators -path rust_indicators/target -prune -o -type f -print | sort | xargs cat | sha256sum | cut -c1-16)"
    if [[ "$(cat "$STAMPS.rust" 2>/dev/null)" == "$want" ]] && "$VPY" -c "import rust_indicators" 2>/dev/null; then
        return
    fi
    say "building rust_indicators (release) into .venv with maturin"
    VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH" "$VENV/bin/maturin" develop --release --quiet \
        --manifest-path rust_indicators/Cargo.toml
    echo "$want" > "$STAMPS.rust"
}

# -- browser for the dashboard tests --------------------------------------------------------------

ensure_browser() {  # Debian's headless Chromium and its driver (the dashboard's browser tests)
    command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 && return
    if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        say "chromium and chromedriver are missing: the dashboard's browser tests need them."
        say "  install as root: apt-get install chromium chromium-driver (Debian packages); those tests skip until then"
        return
    fi
    say "installing chromium and chromium-driver (Debian) for the dashboard's browser tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null \
        || die "apt-get install chromium chromium-driver failed"
}

setup() {
    check_rust
    ensure_venv
    ensure_python_deps
    ensure_rust_extension
}

# -- commands -------------------------------------------------------------------------------------

cmd="${1:-}"
[[ $# -gt 0 ]] && shift
case "$cmd" in
    demo)
        setup
        exec "$VPY" -m auction_trader.demo "$@"
        ;;
    test)
        setup
        ensure_browser
        say "cargo test (rust_indicators)"
        cargo test --quiet --manifest-path rust_indicators/Cargo.toml
        # Test files run on TEST_WORKERS parallel workers (default 3 on this 2-core class of machine:
        # the live-node tests spend most of their time waiting for minute boundaries); -n 0 runs serially.
        say "pytest (${TEST_WORKERS:-3} workers, one file per worker at a time)"
        exec "$VPY" -m pytest -n "${TEST_WORKERS:-3}" --dist loadfile --no-loadscope-reorder "$@"  # files in collection order: the slowest first (tests/conftest.py)
        ;;
    which-python)  # the interpreter set-up would build .venv with (used by the tests)
        find_python
        ;;
    "")
        setup
        say "ready. Run 'bash setup.sh demo' or 'bash setup.sh test'."
        ;;
    *)
        die "unknown command '$cmd'. Usage: bash setup.sh [demo|test] [args...]"
        ;;
esac
