#!/usr/bin/env bash
# The SAM tier (`make test-sam`, also part of `make test`): the functions as `sam build` packages them,
# run by `sam local invoke` in a Lambda-like container, against the local stack (moto_server, the real
# registry, the Docker Hub fake). Steps:
#   1. install what is missing (Debian: docker.io, debootstrap, iproute2; .venv; .venv-sam), idempotently;
#   2. build once, cached by content hash, a stand-in for the Lambda Python base image SAM asks for
#      (public.ecr.aws/lambda/python:3.X-x86_64) from Debian packages and PyPI: tests/sam/runtime_image.sh;
#   3. `sam build --parameter-overrides Runtime=python3.X` (cached) of the development copy of template.yaml
#      (devstack/sam_template.py: it declares AWS_ENDPOINT_URL, so that `sam local invoke --env-vars` can
#      point the functions at moto_server; the production template does not);
#   4. create a network namespace, run a private dockerd in it (own data/exec roots and socket: the host's
#      network is untouched), import the image;
#   5. run pytest tests/sam inside the namespace: it starts the stack on the namespace's 127.0.0.1 and
#      invokes every function with `--docker-network host`, so the functions see that loopback;
#   6. always (trap): stop the stack and dockerd by pid, delete the namespace and the per-run files.
# Anything that cannot run here (no root, no namespaces, dockerd failing) FAILS the tier with the reason.
#
# Environment: SAM_TIER_CACHE (default .cache/sam-tier, gitignored), SAM_TIER_DEBIAN_MIRROR (default: the
# machine's apt sources). Extra arguments go to pytest (e.g. -k remediate -v).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
T0=$SECONDS

say() { echo "sam-tier: [$((SECONDS - T0))s] $*" >&2; }
die() {
    echo "sam-tier: FAILED: $*" >&2
    exit 1
}

# ------------------------------------------------------------------------------------------- preflight
[ "$(id -u)" = 0 ] || die "needs root (network namespace, dockerd, debootstrap); run \`make test-sam\` as root"
[ "$(uname -m)" = x86_64 ] || die "needs an x86_64 machine (the template's Architectures); this is $(uname -m)"

need_apt=()
command -v dockerd >/dev/null 2>&1 || need_apt+=(docker.io)
[ -x /usr/bin/docker ] || command -v docker >/dev/null 2>&1 || need_apt+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need_apt+=(debootstrap)
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
command -v nsenter >/dev/null 2>&1 || need_apt+=(util-linux)
if [ ${#need_apt[@]} -gt 0 ]; then
    mapfile -t need_apt < <(printf '%s\n' "${need_apt[@]}" | sort -u)
    say "installing Debian packages: ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed"
    # The packaged docker service must not start: on a machine with systemd it would run dockerd on the
    # host's network (docker0, nft rules, FORWARD DROP). policy-rc.d (exit 101) stops maintainer scripts
    # from starting services; ours, if there was none, for the duration of the install.
    policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\n# sam-tier: no service starts while packages are installed\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        policy=ours
    fi
    rc=0
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null || rc=$?
    [ "$policy" = ours ] && rm -f /usr/sbin/policy-rc.d
    [ "$rc" = 0 ] || die "apt-get install ${need_apt[*]} failed"
fi
DOCKER=/usr/bin/docker
[ -x "$DOCKER" ] || DOCKER=$(command -v docker)

scripts/setup.sh # .venv (idempotent; a second run takes a second)
PY=$REPO/.venv/bin/python
pyver=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
case $pyver in
3.11) suite=bookworm ;;
3.13) suite=trixie ;;
*) die "no Debian suite has python $pyver as python3 (3.11: bookworm, 3.13: trixie); the stand-in image needs one" ;;
esac
command -v "python$pyver" >/dev/null 2>&1 ||
    die "python$pyver is not on PATH: \`sam build\` without a container builds with it"
scripts/sam.sh --version >/dev/null # .venv-sam (idempotent)
SAM_PY=$REPO/.venv-sam/bin/python

CACHE=${SAM_TIER_CACHE:-$REPO/.cache/sam-tier}
mkdir -p "$CACHE/logs"
CACHE=$(cd "$CACHE" && pwd)
exec 9>"$CACHE/lock"
if ! flock -n 9; then
    say "another sam-tier run uses $CACHE; waiting for it"
    flock 9
fi

debian_mirror() {
    if [ -n "${SAM_TIER_DEBIAN_MIRROR:-}" ]; then
        echo "$SAM_TIER_DEBIAN_MIRROR"
        return
    fi
    # First Debian archive URI of the apt sources (one-line and deb822 formats), not the security one.
    local uri
    uri=$(
        {
            cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
                awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) { print $i; break } }'
            cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk 'tolower($1) == "uris:" { for (i = 2; i <= NF; i++) print $i }'
        } | grep -E '^(https?|file)://' | grep -E '/debian/?$' | head -n1
    ) || true
    if [ -z "$uri" ]; then
        echo "sam-tier: no Debian archive in the apt sources; set SAM_TIER_DEBIAN_MIRROR to one" >&2
        return 1
    fi
    echo "$uri"
}

# ------------------------------------------------------------------------------ 2. the base image stand-in
IMAGE=public.ecr.aws/lambda/python:$pyver-x86_64
PACKAGES=(awslambdaric boto3)
key=$(
    {
        cat tests/sam/runtime_image.sh
        echo "python=$pyver suite=$suite arch=x86_64 packages=${PACKAGES[*]}"
    } | sha256sum | cut -c1-16
)
image_tar=$CACHE/runtime-python$pyver-$key.tar
if [ -f "$image_tar" ]; then
    say "base image stand-in: cached ($image_tar)"
else
    mirror=$(debian_mirror)
    say "building the base image stand-in: Debian $suite from $mirror, python $pyver, ${PACKAGES[*]} (log: $CACHE/logs/image-build.log)"
    rootfs=$CACHE/rootfs.tmp
    rm -rf "$rootfs" "$image_tar.tmp"
    mkdir -p "$rootfs"
    if ! tests/sam/runtime_image.sh "$rootfs" "$pyver" "$suite" "$mirror" "$PY" "${PACKAGES[@]}" \
        >"$CACHE/logs/image-build.log" 2>&1; then
        tail -n 30 "$CACHE/logs/image-build.log" >&2
        rm -rf "$rootfs"
        die "building the base image stand-in failed (log: $CACHE/logs/image-build.log)"
    fi
    tar --numeric-owner -C "$rootfs" -cf "$image_tar.tmp" .
    rm -rf "$rootfs"
    # Other keys are stale: keep one image.
    find "$CACHE" -maxdepth 1 -name 'runtime-python*.tar' ! -name "$(basename "$image_tar")" -delete
    mv "$image_tar.tmp" "$image_tar"
    say "base image stand-in built: $image_tar"
fi

# --------------------------------------------------------------------------------------------- 3. sam build
DEV_TEMPLATE=$CACHE/template.dev.yaml
"$PY" -m devstack.sam_template --template "$REPO/template.yaml" --output "$DEV_TEMPLATE" >/dev/null ||
    die "writing the development template $DEV_TEMPLATE failed"
say "sam build --template-file $DEV_TEMPLATE --parameter-overrides Runtime=python$pyver (log: $CACHE/logs/sam-build.log)"
if ! scripts/sam.sh build --template-file "$DEV_TEMPLATE" --parameter-overrides "Runtime=python$pyver" --cached \
    --build-dir "$CACHE/build" --cache-dir "$CACHE/build-cache" >"$CACHE/logs/sam-build.log" 2>&1; then
    tail -n 30 "$CACHE/logs/sam-build.log" >&2
    die "sam build failed (log: $CACHE/logs/sam-build.log)"
fi

# ------------------------------------------------------------------------------- 4. namespace and dockerd
NS=regcred-sam-$$
RUN=/run/regcred-sam-tier.$$ # exec root and socket: short paths (unix socket length limit)
WORK=$CACHE/run.$$           # docker data root, the stack's directory, sam's scratch files
SOCK=$RUN/docker.sock
DOCKERD_PID=
PYTEST_PID=

# shellcheck disable=SC2317 # (functions called from traps)
stop_pid() { # stop_pid PID NAME: SIGTERM, SIGKILL after 30s; only if PID is still the process NAME
    local pid=$1 name=$2
    [ -n "$pid" ] && [ -n "$name" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 150); do
        [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] || break
        grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null && break # exited, a child of ours not yet reaped
        sleep 0.2
    done
    if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] && ! grep -q '^State:.*Z' "/proc/$pid/status"; then
        echo "sam-tier: $name ($pid) did not stop in 30s: SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null || true # reaps it when it is our child
}

# shellcheck disable=SC2317
teardown() { # teardown RUN WORK NS: what one run started, stopped by pid; its namespace and files removed
    local run=$1 work=$2 ns=$3 containerd_pid pytest_pid
    pytest_pid=$(cat "$run/pytest.pid" 2>/dev/null)
    if [ -n "$pytest_pid" ] && tr '\0' ' ' 2>/dev/null <"/proc/$pytest_pid/cmdline" | grep -q -- '-m pytest tests/sam'; then
        stop_pid "$pytest_pid" "$(cat "/proc/$pytest_pid/comm" 2>/dev/null)" # a run killed with its pytest left
    fi
    if [ -d "$work/stack" ]; then # the stack's processes, if pytest could not stop them
        "$PY" -m devstack.stack down --dir "$work/stack" >/dev/null 2>&1
    fi
    containerd_pid=$(cat "$run/exec/containerd/containerd.pid" 2>/dev/null)
    stop_pid "$(cat "$run/dockerd.pid" 2>/dev/null)" dockerd
    stop_pid "$containerd_pid" containerd # dockerd stops the containerd it started; unless it was killed
    cp "$run/dockerd.log" "$CACHE/logs/dockerd.log" 2>/dev/null
    ip netns delete "$ns" 2>/dev/null
    # dockerd leaves the nsfs mount of its namespace at EXEC_ROOT/netns/default (and, if it was killed,
    # its overlay mounts): unmount what is under the run's directories, or rm fails and the namespace lingers.
    awk -v run="$run/" -v work="$work/" 'index($2, run) == 1 || index($2, work) == 1 { print $2 }' \
        /proc/self/mounts | sort -r | while read -r m; do umount -l "$m"; done
    rm -rf "$run" "$work"
}

# shellcheck disable=SC2317
cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    # pytest, if a signal interrupted the wait (our child: its pid cannot have been reused), then the
    # processes it had started (a `sam local invoke` in flight; the stack's are stopped by teardown)
    if [ -n "$PYTEST_PID" ]; then
        local children child
        children=$(cat /proc/"$PYTEST_PID"/task/*/children 2>/dev/null)
        stop_pid "$PYTEST_PID" "$(cat "/proc/$PYTEST_PID/comm" 2>/dev/null)"
        for child in $children; do stop_pid "$child" "$(cat "/proc/$child/comm" 2>/dev/null)"; done
    fi
    # dockerd by the pid we started (its pid file may not exist yet)
    [ -n "$DOCKERD_PID" ] && [ ! -f "$RUN/dockerd.pid" ] && echo "$DOCKERD_PID" >"$RUN/dockerd.pid"
    teardown "$RUN" "$WORK" "$NS"
    if [ "$rc" = 0 ]; then
        say "done"
    else
        echo "sam-tier: FAILED (exit $rc) after $((SECONDS - T0))s; logs in $CACHE/logs" >&2
    fi
    exit "$rc"
}

# Runs that were killed (SIGKILL, machine reset) left their dockerd, namespace and files: clean them up.
for stale in /run/regcred-sam-tier.*; do
    [ -d "$stale" ] || continue
    owner=${stale##*.}
    kill -0 "$owner" 2>/dev/null && continue # that run is still going
    say "cleaning up after an interrupted run (pid $owner)"
    set +e
    teardown "$stale" "$(cat "$stale/work" 2>/dev/null || echo "$CACHE/run.$owner")" "regcred-sam-$owner"
    set -e
done

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$RUN" "$WORK/docker"
echo "$WORK" >"$RUN/work"
ip netns add "$NS" ||
    die "cannot create a network namespace (ip netns add $NS): the tier needs root with CAP_SYS_ADMIN and network namespaces"
ip -n "$NS" link set lo up || die "cannot bring up lo in network namespace $NS"
say "starting dockerd in network namespace $NS (log: $CACHE/logs/dockerd.log)"
# nsenter, not `ip netns exec` (it remounts /sys, which fails here). nsenter execs dockerd: $! is its pid.
nsenter --net="/var/run/netns/$NS" dockerd --data-root "$WORK/docker" --exec-root "$RUN/exec" \
    --pidfile "$RUN/dockerd.pid" -H "unix://$SOCK" >"$RUN/dockerd.log" 2>&1 9>&- &
DOCKERD_PID=$!
export DOCKER_HOST=unix://$SOCK
for i in $(seq 1 150); do
    "$DOCKER" version >/dev/null 2>&1 && break
    if ! kill -0 "$DOCKERD_PID" 2>/dev/null || [ "$i" = 150 ]; then
        tail -n 20 "$RUN/dockerd.log" >&2
        die "dockerd did not start in network namespace $NS (its log is above)"
    fi
    sleep 0.2
done

"$DOCKER" import \
    --change 'ENTRYPOINT ["/var/runtime/bootstrap"]' \
    --change 'WORKDIR /var/task' \
    --change 'ENV LANG=C.UTF-8 TZ=:/etc/localtime PATH=/var/lang/bin:/usr/local/bin:/usr/bin:/bin LAMBDA_TASK_ROOT=/var/task LAMBDA_RUNTIME_DIR=/var/runtime' \
    --change "LABEL org.regcred.sam-tier.key=$key" \
    "$image_tar" "$IMAGE" >/dev/null || die "docker import of $image_tar failed"
# A container of it runs the interpreter with the runtime client, the SDK and Lambda's sys.path order.
check="import sys, awslambdaric, boto3
want = ['/var/task', '/opt/python/lib/python$pyver/site-packages', '/opt/python', '/var/runtime']
got = [p for p in sys.path if p in want]
assert got == want, f'sys.path order {got}, want {want}'"
# shellcheck disable=SC2016 # expanded in the container
"$DOCKER" run --rm --network none --entrypoint /bin/sh -e CHECK="$check" "$IMAGE" \
    -c 'eval "$(grep "^export PYTHONPATH=" /var/runtime/bootstrap)" && exec /var/lang/bin/python3 -c "$CHECK"' ||
    die "$IMAGE does not run python$pyver with awslambdaric, boto3 and Lambda's sys.path (see above)"
say "imported $IMAGE"

# ------------------------------------------------------------------------------------ 5. pytest tests/sam
say "pytest tests/sam inside $NS"
# In the background and waited for, so that a SIGTERM to this script is handled at once (cleanup).
nsenter --net="/var/run/netns/$NS" env \
    DOCKER_HOST="unix://$SOCK" \
    SAM_TIER=1 \
    SAM_TIER_NETNS="$NS" \
    SAM_TIER_PYTHON="$SAM_PY" \
    SAM_TIER_BUILD_DIR="$CACHE/build" \
    SAM_TIER_CACHE="$CACHE" \
    SAM_TIER_RUNTIME="python$pyver" \
    SAM_TIER_IMAGE="$IMAGE" \
    SAM_TIER_STACK_DIR="$WORK/stack" \
    "$PY" -m pytest tests/sam -q -p no:cacheprovider "$@" 9>&- </dev/null &
PYTEST_PID=$!
echo "$PYTEST_PID" >"$RUN/pytest.pid"
rc=0
wait "$PYTEST_PID" || rc=$?
PYTEST_PID=
exit "$rc"
