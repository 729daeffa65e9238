#!/usr/bin/env bash
# Installs every Debian 12 package Kairo needs to build, test and run. Idempotent and non-interactive:
# run as root on a fresh machine (or with sudo). Installs only what is missing, so a second run is fast.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git clang-format python3 python3-yaml
  clang libclang-rt-14-dev                         # libFuzzer + sanitizers
  libgtest-dev libgmock-dev libbenchmark-dev
  # renderer
  libvulkan-dev mesa-vulkan-drivers vulkan-validationlayers glslang-tools spirv-tools
  libassimp-dev assimp-testmodels libglm-dev libstb-dev libmeshoptimizer-dev
  # shared core
  libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev
  # encoder
  libavcodec-dev libavutil-dev libavformat-dev libswscale-dev libdrm-dev libva-dev ffmpeg libx264-dev
  # streaming
  libboost-dev libboost-system-dev libsodium-dev libisal-dev libprotobuf-dev protobuf-compiler libsrt-openssl-dev
  # control plane
  libpqxx-dev postgresql libjwt-dev libssl-dev prometheus
  # browser sessions: WebRTC on the node (webrtcbin), and the browser the tests drive
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev gstreamer1.0-plugins-base
  gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-nice chromium-headless-shell
)
# Node.js and npm build and test the browser client (web/); any Node.js >= 18 with npm will do (Debian's, or
# one already installed another way).
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: needs root to install packages (try: sudo $0)" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "setup.sh: installing ${#missing[@]} packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # postgresql's package would start a cluster service; Kairo starts its own throwaway servers instead.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup.sh: all ${#packages[@]} packages present"
fi

# The browser client's npm packages, pinned by web/package-lock.json (the npm registry is the only source).
web=$(cd "$(dirname "$0")/../web" && pwd)
if [ ! -f "$web/node_modules/.package-lock.json" ] || [ "$web/package-lock.json" -nt "$web/node_modules/.package-lock.json" ]; then
  echo "setup.sh: installing the browser client's npm packages (web/package-lock.json)"
  # npm trusts the system's certificate store (Debian's ca-certificates and any CA this machine's network
  # requires), not only Node.js's built-in list, unless npm is configured with a CA file of its own.
  npm_ca=()
  if [ "$(npm config get cafile 2>/dev/null)" = "null" ] && [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    npm_ca=(--cafile /etc/ssl/certs/ca-certificates.crt)
  fi
  (cd "$web" && npm ci --no-audit --no-fund --loglevel=error "${npm_ca[@]}")
fi
