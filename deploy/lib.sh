# shellcheck shell=bash
# Shared helpers for Quiver's shell entry points (deploy/build, tests/run).
# Sourced, never executed.  Bash only.

# Messages go to stderr so that a caller capturing stdout gets only data.
quiver_log()  { printf '==> %s\n' "$*" >&2; }
quiver_warn() { printf 'warning: %s\n' "$*" >&2; }
quiver_die()  { printf 'error: %s\n' "$*" >&2; exit 1; }

# Absolute path of the repository (the parent of deploy/).
quiver_root() {
  (cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
}

# Where repo-local dependencies live; QUIVER_DEPS_DIR overrides it (used to
# test the raft build from nothing without touching the real .deps/).
quiver_deps_dir() {
  local root
  root=$(quiver_root)
  printf '%s\n' "${QUIVER_DEPS_DIR:-$root/.deps}"
}

# Raft: the version we build (patched with deploy/patches/; a system raft is
# used only with QUIVER_USE_SYSTEM_RAFT=1 and >= QUIVER_RAFT_MIN_VERSION), and
# the SHA-256 of its upstream tarball as shipped in Debian 13 (trixie).
# shellcheck disable=SC2034  # used by the scripts that source this file
QUIVER_RAFT_VERSION=0.22.1
# shellcheck disable=SC2034
QUIVER_RAFT_ORIG_SHA256=7e45b6f24f3671c9bfd5b146814493f87cb2e560712bd469c1f5969a4b94291a
# shellcheck disable=SC2034
QUIVER_RAFT_MIN_VERSION=0.18

quiver_raft_prefix() {
  printf '%s/raft-%s\n' "$(quiver_deps_dir)" "$QUIVER_RAFT_VERSION"
}

# Prints the PKG_CONFIG_PATH that makes `pkg-config raft` find raft >= 0.18:
# the repo-local prefix first when it holds an install, then the caller's path.
quiver_pkg_config_path() {
  local pc
  pc="$(quiver_raft_prefix)/lib/pkgconfig"
  if [ -f "$(quiver_raft_prefix)/.quiver-raft-stamp" ] && [ -f "$pc/raft.pc" ]; then
    printf '%s\n' "$pc${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  else
    printf '%s\n' "${PKG_CONFIG_PATH:-}"
  fi
}

quiver_nproc() {
  nproc 2>/dev/null || echo 2
}
