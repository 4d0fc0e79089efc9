#!/usr/bin/env bash
# Run the AWS SAM CLI from its own venv (.venv-sam). aws-sam-cli pins boto3/botocore/cfn-lint versions
# that must not disturb the project's .venv. Idempotent: a stamp keyed on the pinned version makes every
# run after the first skip the install.
#   scripts/sam.sh validate --lint
#   scripts/sam.sh build --parameter-overrides Runtime=python3.11
set -euo pipefail
cd "$(dirname "$0")/.."

SAM_CLI_VERSION=${SAM_CLI_VERSION:-1.170.0}
venv=.venv-sam
stamp=$venv/.regcred-sam
want="aws-sam-cli==$SAM_CLI_VERSION"

if ! { [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/sam" ]; }; then
    PY=${PYTHON:-python3}
    echo "sam.sh: installing $want into $venv" >&2
    [ -x "$venv/bin/python" ] || "$PY" -m venv "$venv"
    log=$venv/install.log
    # pip's output goes to a log (this machine's pip config adds noisy index warnings); shown on failure.
    if ! { "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip &&
           "$venv/bin/python" -m pip install -q --disable-pip-version-check "$want"; } >"$log" 2>&1; then
        cat "$log" >&2
        echo "sam.sh: installing $want failed (log: $log)" >&2
        exit 1
    fi
    echo "$want" > "$stamp"
fi

export SAM_CLI_TELEMETRY=0
exec "$venv/bin/sam" "$@"
