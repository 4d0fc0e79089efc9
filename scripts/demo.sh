#!/usr/bin/env bash
# make demo: onboard a Docker Hub credential on the local stack, check it, rotate it, and show that
# the new credential pulls from the real registry while AWSPREVIOUS still holds the old one.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
DIR=.stack/demo
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

$PY -m devstack.stack down --dir "$DIR" >/dev/null 2>&1 || true
trap '$PY -m devstack.stack down --dir "$DIR" >/dev/null; echo; echo "stack stopped"' EXIT
say "local stack: moto_server, the distribution registry (token auth), a Docker Hub API fake"
$PY -m devstack.stack up --dir "$DIR"
# shellcheck disable=SC1091
source "$DIR/env"
export PATH="$PWD/.venv/bin:$PATH"
echo "registry $REGCRED_REGISTRY, Docker Hub API $REGCRED_DOCKERHUB_API, image $REGCRED_SEED_IMAGE"

say "store the Docker Hub admin identity in its own secret"
$PY - <<'PY'
import json, os, boto3
sm = boto3.client("secretsmanager")
sm.create_secret(Name="demo/dockerhub-admin", SecretString=json.dumps(
    {"username": os.environ["REGCRED_DOCKERHUB_ADMIN_USER"], "password": os.environ["REGCRED_DOCKERHUB_ADMIN_TOKEN"]}))
print("created demo/dockerhub-admin")
PY

say "regcred onboard: mint a personal access token, prove it pulls, create the managed secret"
regcred onboard demo/batch-pull --provider dockerhub --admin-secret demo/dockerhub-admin \
    --registry "$REGCRED_REGISTRY" --api "$REGCRED_DOCKERHUB_API" --image "$REGCRED_SEED_IMAGE"

say "regcred check: the AWSCURRENT credential through the registry's /v2/ token flow"
regcred check demo/batch-pull

say "regcred rotate --local: the four Secrets Manager steps, in process"
regcred rotate demo/batch-pull --local

say "staging labels after rotation (no passwords shown)"
regcred show demo/batch-pull

say "the new credential (AWSCURRENT) pulls"
regcred check demo/batch-pull --stage AWSCURRENT
say "the old credential (AWSPREVIOUS) still pulls during its grace period"
regcred check demo/batch-pull --stage AWSPREVIOUS
