#!/usr/bin/env bash
# Installs the Debian packages hloserve builds and tests with.  Idempotent:
# packages already present are not reinstalled, and apt-get update runs only
# when something is missing.  Needs root (or sudo) on a Debian 12 machine.
set -euo pipefail
pkgs=(
  build-essential cmake clang libclang-rt-14-dev   # compilers, libFuzzer/ASan runtimes
  libdnnl-dev                                      # oneDNN: convolution and matmul
  libjansson-dev                                   # JSON (safetensors headers, bundle manifests)
  libmicrohttpd-dev                                # HTTP server for `hloserve serve`
  libjpeg62-turbo-dev libpng-dev libcairo2-dev     # hloserve-detect: image I/O, drawing
  libcurl4-openssl-dev fonts-dejavu-core pkg-config  # hloserve-detect: HTTP, label font
  nginx                                            # tests/python/test_nginx.py: load balancer
  python3-venv
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
