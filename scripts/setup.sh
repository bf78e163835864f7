#!/usr/bin/env bash
# Installs everything fastmig needs on Debian 12, idempotently, then returns.
# Packages come from the machine's own apt sources. CRIU >= 4.2 is built from
# Debian's source package when the installed one is missing, too old or broken.
set -euo pipefail

[ "$(id -u)" -eq 0 ] || { echo "setup: must run as root" >&2; exit 1; }

PACKAGES=(
  build-essential meson ninja-build pkg-config git
  lxc lxc-dev libmnl-dev busybox-static debootstrap squashfs-tools rsync iproute2 iptables procps psmisc
  glusterfs-server glusterfs-client
  libjson-c-dev libxxhash-dev liblz4-dev
  # TLS between fastmig and its agents (src/pki)
  libssl-dev
  # the orchestrator (src/orch): its database, HTTPS server and HTTP client;
  # curl for the API's tests
  libsqlite3-dev libmicrohttpd-dev libcurl4-openssl-dev curl
  # users' traces (src/mobility): SUMO's fcd-export XML
  libexpat1-dev
  # the protocol fuzzer (tests/unit/test_fuzz_proto.sh): clang and its
  # compiler-rt (libFuzzer, ASan), which clang-14 only recommends
  clang libclang-rt-dev
  # CRIU build dependencies (Debian 12)
  libprotobuf-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler
  python3-protobuf libnl-3-dev libnet1-dev libcap-dev libbsd-dev
  libnftables-dev libgnutls28-dev uuid-dev libaio-dev xz-utils
)
CRIU_VERSION=4.2.1
CRIU_DEB_VERSION=4.2.1-1
CRIU_ORIG_SHA256=29ec0ee09e296479fe7048c80980e8ef1d0684d0b0204c2b101dfea19f6725b9
CRIU_BUILD_DIR=${FASTMIG_CACHE:-/var/cache/fastmig}/criu

log() { printf 'setup: %s\n' "$*" >&2; }

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

criu_ok() {
  command -v criu >/dev/null 2>&1 || return 1
  local v
  v=$(criu --version 2>/dev/null | sed -n 's/^Version: *//p')
  [ -n "$v" ] || return 1
  # version must be >= 4.2
  [ "$(printf '%s\n4.2\n' "$v" | sort -V | head -n1)" = "4.2" ] || return 1
  criu check >/dev/null 2>&1 || return 1
}

build_criu() {
  local src list
  mkdir -p "$CRIU_BUILD_DIR"
  cd "$CRIU_BUILD_DIR"
  if [ ! -f "criu_${CRIU_VERSION}.orig.tar.xz" ]; then
    # A deb-src-only entry for testing/unstable made from the machine's own
    # sources (no host name is written by us), removed again right after.
    list=/etc/apt/sources.list.d/fastmig-criu-src.sources
    trap 'rm -f "$list"; apt-get update -q >/dev/null 2>&1 || true' RETURN
    awk '/^URIs:/ && !done { print "Types: deb-src"; print; print "Suites: testing unstable";
                             print "Components: main"; done=1 }
         /^Signed-By:/ && !sig { print; sig=1 }' /etc/apt/sources.list.d/debian.sources > "$list"
    apt-get update -q >/dev/null 2>&1 || true
    log "fetching criu ${CRIU_DEB_VERSION} source"
    apt-get source --download-only "criu=${CRIU_DEB_VERSION}" >/dev/null 2>&1 || true
    rm -f "$list"
    apt-get update -q >/dev/null 2>&1 || true
    trap - RETURN
  fi
  [ -f "criu_${CRIU_VERSION}.orig.tar.xz" ] || { log "could not fetch criu source"; return 1; }
  echo "${CRIU_ORIG_SHA256}  criu_${CRIU_VERSION}.orig.tar.xz" | sha256sum -c --quiet - \
    || { log "criu source checksum mismatch"; rm -f "criu_${CRIU_VERSION}.orig.tar.xz"; return 1; }
  rm -rf "criu-${CRIU_VERSION}"
  tar -xJf "criu_${CRIU_VERSION}.orig.tar.xz"
  cd "criu-${CRIU_VERSION}"
  log "building criu ${CRIU_VERSION} (about a minute)"
  make -j"$(nproc)" criu >build.log 2>&1 || { tail -n 30 build.log >&2; return 1; }
  install -m 0755 criu/criu /usr/local/sbin/criu
  hash -r
}

if ! criu_ok; then
  build_criu
  criu_ok || { log "criu $(criu --version 2>&1 | head -n1) does not work on this kernel"; exit 1; }
fi

# lazy-pages and a few CRIU paths need larger pipes than the default when
# CAP_SYS_RESOURCE is missing (see docs/PLATFORM notes).
sysctl -q -w fs.pipe-max-size=4194304 >/dev/null 2>&1 || true
exit 0
