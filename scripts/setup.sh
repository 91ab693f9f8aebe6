#!/usr/bin/env bash
# Provision what the project needs, idempotently: Python environment, Docker engine
# (installed and started where absent and we are root), the local base image.
#   usage: scripts/setup.sh [--localstack] [--sdk3]
#   --localstack: also LocalStack's own environment (.localstack-venv, Python 3.13), for
#                 `python -m harness emulator --engine localstack`
#   --sdk3: also the SageMaker Python SDK v3's environment (.sdk3-venv), whose notebook
#           tests/integration/test_sdk_v3.py runs against the local AWS
set -euo pipefail
cd "$(dirname "$0")/.."

with_localstack=
with_sdk3=
for arg in "$@"; do
    case "$arg" in
        --localstack) with_localstack=1 ;;
        --sdk3) with_sdk3=1 ;;
        *) echo "[setup] unknown option $arg (usage: scripts/setup.sh [--localstack] [--sdk3])" >&2; exit 2 ;;
    esac
done

say() { printf '[setup] %s\n' "$*"; }

need_root() {
    if [ "$(id -u)" != 0 ]; then
        echo "[setup] $1 is missing and installing it needs root; install it and re-run" >&2
        exit 1
    fi
}

apt_install() {
    need_root "$*"
    if [ -z "${_apt_updated:-}" ]; then
        apt-get update -qq
        _apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# 1. Docker engine and compose (SageMaker local mode drives containers through compose).
if ! command -v dockerd >/dev/null 2>&1; then
    say "installing the Docker engine (docker.io)"
    apt_install docker.io
fi
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1; then
    say "installing docker-compose"
    apt_install docker-compose
fi
# A real registry on loopback backs the local AWS's ECR, so pushes never leave the machine.
if ! command -v docker-registry >/dev/null 2>&1; then
    say "installing docker-registry"
    apt_install docker-registry
fi
# Graphviz lays out `mlharness graph --format svg|png` and the console's graphs; Debian's
# Chromium and its driver run the console's browser test (nothing is downloaded at run time).
if ! command -v dot >/dev/null 2>&1; then
    say "installing graphviz"
    apt_install graphviz
fi
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    say "installing chromium and chromium-driver"
    apt_install chromium chromium-driver
fi
if ! docker info >/dev/null 2>&1; then
    need_root "a running Docker engine"
    say "starting dockerd"
    nohup dockerd >/var/log/mlharness-dockerd.log 2>&1 &
    for _ in $(seq 60); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
    docker info >/dev/null 2>&1 || { echo "[setup] dockerd did not start; see /var/log/mlharness-dockerd.log" >&2; exit 1; }
fi

# 2. The base image for job images. Where no registry can be pulled from, build it.
base_image="${MLHARNESS_BASE_IMAGE:-mlharness/base:bookworm}"
if ! docker image inspect "$base_image" >/dev/null 2>&1; then
    if ! command -v debootstrap >/dev/null 2>&1; then
        say "installing debootstrap"
        apt_install debootstrap
    fi
    say "building the base image $base_image"
    bash harness/resources/images/base/build-base.sh "$base_image"
fi

# 3. Python environment with the pinned dependencies.
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3
if [ ! -x .venv/bin/python ]; then
    say "creating .venv"
    "$python" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -e "$stamp" ]; then
    say "installing Python packages"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e '.[test]'
    rm -f .venv/.installed-*
    touch "$stamp"
fi
# 4. The wheelhouse the local AWS's own image installs from (docker-compose.yml's local-aws service).
.venv/bin/python -c 'from harness import images; images.ensure_wheelhouse(images.LOCAL_AWS_IMAGE_CONTEXT, into=images.LOCAL_AWS_IMAGE_CONTEXT / images.WHEELHOUSE)'

# 5. LocalStack's environment, only when asked: LocalStack 4.14 runs in host mode on Python 3.13.
if [ -n "$with_localstack" ]; then
    stamp=.localstack-venv/.installed-$(sha256sum requirements/localstack.txt | cut -c1-16)
    if [ ! -e "$stamp" ]; then
        # the first that really is 3.13 (a pyenv shim may exist for a version it does not select)
        python313=
        for candidate in ${PYTHON313:-} python3.13 "$HOME"/.pyenv/versions/3.13*/bin/python3.13; do
            if "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 13)' >/dev/null 2>&1; then
                python313=$candidate
                break
            fi
        done
        if [ -z "$python313" ]; then
            echo "[setup] LocalStack 4.14 needs Python 3.13: install it, or name it in PYTHON313" >&2
            exit 1
        fi
        say "installing LocalStack's environment (.localstack-venv, $("$python313" --version))"
        rm -rf .localstack-venv
        "$python313" -m venv .localstack-venv
        .localstack-venv/bin/python -m pip install -q --upgrade pip
        .localstack-venv/bin/python -m pip install -q -r requirements/localstack.txt
        touch "$stamp"
    fi
fi
# 6. The SageMaker SDK v3's environment, only when asked (the project's own is v2: users have both).
if [ -n "$with_sdk3" ]; then
    stamp=.sdk3-venv/.installed-$(sha256sum requirements/sdk3.txt | cut -c1-16)
    if [ ! -e "$stamp" ]; then
        say "installing the SageMaker SDK v3's environment (.sdk3-venv)"
        rm -rf .sdk3-venv
        .venv/bin/python -m venv .sdk3-venv
        .sdk3-venv/bin/python -m pip install -q --upgrade pip
        .sdk3-venv/bin/python -m pip install -q --no-deps -r requirements/sdk3.txt
        touch "$stamp"
    fi
fi
say "ready"
