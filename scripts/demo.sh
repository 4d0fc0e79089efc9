#!/usr/bin/env bash
# make demo: on the local stack, onboard a Docker Hub credential, check it, rotate it, and show that the
# new credential pulls from the real registry while AWSPREVIOUS still holds the old one; then the same
# for GitLab deploy tokens, through to retirement, an import for a registry regcred cannot mint for, and a
# sweep of them all with `regcred status` after it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
DIR=.stack/demo
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

$PY -m devstack.stack down --dir "$DIR" >/dev/null 2>&1 || true
trap '$PY -m devstack.stack down --dir "$DIR" >/dev/null; echo; echo "stack stopped"' EXIT
say "local stack: moto_server, and for each vendor its API fake beside a real distribution registry"
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

say "a second vendor: GitLab, with its own fake and registry (deploy tokens, project $REGCRED_GITLAB_SEED_IMAGE)"
$PY - <<'PY'
import json, os, boto3
boto3.client("secretsmanager").create_secret(Name="demo/gitlab-admin", SecretString=json.dumps(
    {"username": os.environ["REGCRED_GITLAB_ADMIN_USER"], "password": os.environ["REGCRED_GITLAB_ADMIN_TOKEN"]}))
print("created demo/gitlab-admin")
PY
# shellcheck disable=SC2086 # ONBOARD_ARGS holds several flags
regcred onboard demo/gitlab-pull --provider gitlab --admin-secret demo/gitlab-admin \
    --image "$REGCRED_GITLAB_SEED_IMAGE" $REGCRED_GITLAB_ONBOARD_ARGS
regcred rotate demo/gitlab-pull --local
regcred show demo/gitlab-pull

say "the grace period over (regcred:grace=0s): retire the old deploy token, deleted at GitLab"
$PY -c 'import boto3; boto3.client("secretsmanager").tag_resource(SecretId="demo/gitlab-pull", Tags=[{"Key": "regcred:grace", "Value": "0s"}])'
regcred retire demo/gitlab-pull
if regcred check demo/gitlab-pull --stage AWSPREVIOUS; then
    echo "unexpected: the retired deploy token still pulls" >&2
    exit 1
fi
echo "(exit 1 is the point: the registry refuses the retired token on a fresh login)"

say "a registry regcred cannot mint for (static): onboard, then import a new credential"
# shellcheck disable=SC2086
echo "$REGCRED_STATIC_ADMIN_TOKEN" | regcred onboard demo/static-pull --provider static \
    --image "$REGCRED_STATIC_SEED_IMAGE" $REGCRED_STATIC_ONBOARD_ARGS
echo "$REGCRED_STATIC_IMPORT_TOKEN" | regcred import demo/static-pull --username "$REGCRED_STATIC_IMPORT_USER"
regcred show demo/static-pull

say "the sweep, as the schedule runs it: prove every managed secret with a fresh login, record it, plan what is next"
regcred sweep --local
regcred status
regcred status demo/batch-pull

say "every provider, and what it declares (regcred providers)"
regcred providers
