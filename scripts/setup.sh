#!/usr/bin/env bash
# Idempotent setup: Debian packages the local stack needs, then .venv with regcred and its dev tools.
# A stamp keyed on the dependency files makes a second run take a second.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v docker-registry >/dev/null 2>&1 || need_apt+=(docker-registry)
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "setup: need Debian packages ${need_apt[*]}; run as root or: sudo apt-get install -y ${need_apt[*]}" >&2
        exit 1
    fi
    echo "setup: installing Debian packages: ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # --no-install-recommends: we run the binary with our own config, never the packaged service.
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
stamp=.venv/.regcred-setup
want=$(cat pyproject.toml layers/regcred/requirements.txt | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x .venv/bin/regcred ]; then
    exit 0
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
echo "setup: installing regcred and its dev tools into .venv (log: .venv/setup.log)"
if ! { .venv/bin/python -m pip install --upgrade pip && .venv/bin/python -m pip install -e '.[dev]'; } \
        > .venv/setup.log 2>&1; then
    tail -n 40 .venv/setup.log >&2
    echo "setup: pip install failed; see .venv/setup.log" >&2
    exit 1
fi
echo "$want" > "$stamp"
echo "setup: .venv ready"
