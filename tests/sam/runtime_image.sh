#!/usr/bin/env bash
# Recipe of the local stand-in for the Lambda Python base image (public.ecr.aws/lambda/python:3.X-x86_64),
# built from Debian packages and PyPI only. scripts/sam_tier.sh runs it, caches the result by the hash
# of this file (plus the Python version, suite and package list), then `docker import`s the tree.
#   tests/sam/runtime_image.sh ROOT PYVER SUITE MIRROR PIP_PYTHON PACKAGES...
# ROOT: empty directory to fill; PYVER: 3.X; SUITE: Debian suite whose python3 is 3.X; MIRROR: Debian
# mirror; PIP_PYTHON: a local interpreter of version 3.X (pip picks the wheels for it).
set -euo pipefail
root=$1 pyver=$2 suite=$3 mirror=$4 pip_python=$5
shift 5
packages=("$@")

debootstrap --variant=minbase --include=python3,ca-certificates "$suite" "$root" "$mirror" >&2

# The interpreter where Lambda has it; the tree's python3 must be the version the functions are built for.
got=$(chroot "$root" /usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ "$got" != "$pyver" ]; then
    echo "runtime_image: $suite ships python $got, not $pyver" >&2
    exit 1
fi
mkdir -p "$root/var/lang/bin" "$root/var/runtime" "$root/var/task" "$root/opt"
ln -sf "/usr/bin/python$pyver" "$root/var/lang/bin/python$pyver"
ln -sf "python$pyver" "$root/var/lang/bin/python3"
ln -sf "python$pyver" "$root/var/lang/bin/python"

# The runtime interface client and the SDK, as Lambda's image has them in /var/runtime. Binary wheels
# only, for the interpreter version of the tree (pip_python has the same minor version).
"$pip_python" -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
    --only-binary=:all: --target "$root/var/runtime" "${packages[@]}" >&2
"$pip_python" -c 'import sys; assert "%d.%d" % sys.version_info[:2] == sys.argv[1]' "$pyver"

# Lambda's sys.path order: the function, the layers' two paths, then the runtime.
cat > "$root/var/runtime/bootstrap" <<BOOT
#!/bin/sh
export PYTHONPATH="/var/task:/opt/python/lib/python$pyver/site-packages:/opt/python:/var/runtime"
exec /var/lang/bin/python$pyver -m awslambdaric "\$_HANDLER"
BOOT
chmod 755 "$root/var/runtime/bootstrap"

# What docker import does not need: downloaded packages, apt lists, docs.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc \
    "$root"/usr/share/man "$root"/usr/share/locale
