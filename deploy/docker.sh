# shellcheck shell=bash
# Docker helpers for ./deploy/up and ./deploy/down (sourced after deploy/lib.sh).
#
# Why this file exists: on a fresh Debian 12 machine there is no Docker at all,
# no systemd to start it, and often no route to Docker Hub.  These helpers
#   - install docker.io and docker-compose (and debootstrap, only when the base
#     image must be made locally) from Debian's packages, checking dpkg first;
#   - start dockerd in the background when none answers, after removing the
#     pid files a killed daemon leaves behind, and record that WE started it
#     (state file), so ./deploy/down stops only a daemon that ./deploy/up
#     started and never one the user runs;
#   - provide the base image debian:bookworm-slim: `docker pull` first (the
#     normal path), else debootstrap --variant=minbase from this machine's own
#     configured Debian mirror, imported under the same name and tag, so the
#     one Dockerfile builds offline too.
#
# Environment:
#   QUIVER_DEPLOY_STATE_DIR  state and dockerd log (default /run/quiver-deploy;
#                            under /run because a recorded pid means nothing
#                            after a reboot)
#   QUIVER_DOCKER_TIMEOUT_S  how long to wait for `docker info` (default 60)
#   QUIVER_DEBIAN_MIRROR     Debian mirror for debootstrap (default: the first
#                            Debian URI in /etc/apt/sources*)
#   QUIVER_BASE_IMAGE        base image name (default debian:bookworm-slim)
#   QUIVER_PULL              1 (default): try `docker pull` of the base image
#                            before making it locally; 0: never contact a
#                            registry (tests/run sets 0: CI downloads only
#                            from the machine's Debian mirror)

QUIVER_BASE_IMAGE=${QUIVER_BASE_IMAGE:-debian:bookworm-slim}
QUIVER_IMAGE=${QUIVER_IMAGE:-quiver:local}
QUIVER_COMPOSE_PROJECT=${QUIVER_COMPOSE_PROJECT:-quiver}
QUIVER_DEPLOY_STATE_DIR=${QUIVER_DEPLOY_STATE_DIR:-/run/quiver-deploy}
QUIVER_DOCKER_TIMEOUT_S=${QUIVER_DOCKER_TIMEOUT_S:-60}
QUIVER_PULL=${QUIVER_PULL:-1}
# Docker's default run directory and the pid files a killed daemon leaves.
QUIVER_DOCKERD_PIDFILE=/var/run/docker.pid
QUIVER_CONTAINERD_PIDFILE=/var/run/docker/containerd/containerd.pid
# The Docker CLI found first may be newer than the Debian daemon (API
# negotiation handles that); the legacy builder is what a daemon without
# buildx has, so ask for it explicitly instead of relying on a fallback.
export DOCKER_BUILDKIT=0
export COMPOSE_DOCKER_CLI_BUILD=0

dk_as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    quiver_die "need root to run: $* (run as root, or install sudo)"
  fi
}

# docker / docker-compose as this user when the daemon lets us, else via sudo.
dk_sudo_prefix() {
  if [ "$(id -u)" = 0 ] || docker info >/dev/null 2>&1; then
    return 0
  fi
  printf 'sudo\n'
}
dk()      { $(dk_sudo_prefix) docker "$@"; }
dk_compose() {
  $(dk_sudo_prefix) env DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0 \
    docker-compose -p "$QUIVER_COMPOSE_PROJECT" -f "$(quiver_root)/docker-compose.yml" "$@"
}

dk_pkg_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# dk_install_packages PKG...: installs those not installed yet.  `apt-get
# update` runs only when something is missing.
dk_install_packages() {
  local missing=() p
  for p in "$@"; do
    dk_pkg_installed "$p" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  quiver_log "installing Debian packages: ${missing[*]}"
  dk_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null \
    || quiver_die "apt-get update failed (network or mirror problem?)"
  # docker.io's postinst asks invoke-rc.d to start the daemon; without systemd
  # policy-rc.d usually refuses, which is fine: dk_daemon_ensure starts it.
  dk_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" \
    || quiver_die "apt-get install failed for: ${missing[*]}"
}

dk_state_dir() {
  dk_as_root mkdir -p "$QUIVER_DEPLOY_STATE_DIR"
  printf '%s\n' "$QUIVER_DEPLOY_STATE_DIR"
}

# Prints the pid in FILE when that process is alive and its command is NAME.
dk_live_pid() {
  local file=$1 name=$2 pid comm
  [ -f "$file" ] || return 1
  pid=$(tr -dc '0-9' < "$file" 2>/dev/null)
  [ -n "$pid" ] || return 1
  comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
  [ "$comm" = "$name" ] || return 1
  # A killed daemon whose parent has not reaped it yet is a zombie: dead.
  dk_pid_is_zombie "$pid" && return 1
  printf '%s\n' "$pid"
}

# /proc/PID/stat's third field is the state; Z = exited, not reaped yet.
dk_pid_is_zombie() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" = Z ]
}

# True while PID runs (a zombie counts as gone).
dk_pid_running() {
  [ -d "/proc/$1" ] && ! dk_pid_is_zombie "$1"
}

dk_daemon_answers() { dk info >/dev/null 2>&1; }

# Removes pid files whose process is gone (or was reused by another program):
# a killed dockerd leaves /var/run/docker.pid and its containerd's pid file.
# Sockets are left alone: both daemons replace a stale socket when they start.
dk_clean_stale_pidfiles() {
  if [ -f "$QUIVER_DOCKERD_PIDFILE" ] && ! dk_live_pid "$QUIVER_DOCKERD_PIDFILE" dockerd >/dev/null; then
    quiver_log "removing stale $QUIVER_DOCKERD_PIDFILE (pid $(cat "$QUIVER_DOCKERD_PIDFILE" 2>/dev/null) is not a running dockerd)"
    dk_as_root rm -f "$QUIVER_DOCKERD_PIDFILE"
  fi
  if [ -f "$QUIVER_CONTAINERD_PIDFILE" ] && ! dk_live_pid "$QUIVER_CONTAINERD_PIDFILE" containerd >/dev/null; then
    quiver_log "removing stale $QUIVER_CONTAINERD_PIDFILE"
    dk_as_root rm -f "$QUIVER_CONTAINERD_PIDFILE"
  fi
}

# dk_wait_daemon DEADLINE_EPOCH_S: 0 once `docker info` answers.
dk_wait_daemon() {
  local deadline=$1
  while ! dk_daemon_answers; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

# Makes sure a Docker daemon answers.  Starts one (and records it in the state
# file dockerd.started) only when none is running.
dk_daemon_ensure() {
  if dk_daemon_answers; then
    return 0
  fi
  command -v dockerd >/dev/null 2>&1 || quiver_die "dockerd is not installed (apt-get install docker.io)"
  local state deadline pid log t0
  state=$(dk_state_dir)
  log="$state/dockerd.log"
  deadline=$(( $(date +%s) + QUIVER_DOCKER_TIMEOUT_S ))
  if pid=$(dk_live_pid "$QUIVER_DOCKERD_PIDFILE" dockerd); then
    # A daemon is starting (or stuck): wait for it rather than start a second.
    quiver_log "dockerd (pid $pid) is running but not answering yet; waiting up to ${QUIVER_DOCKER_TIMEOUT_S}s"
    dk_wait_daemon "$deadline" && return 0
    quiver_die "dockerd pid $pid does not answer \`docker info\` after ${QUIVER_DOCKER_TIMEOUT_S}s; look at its log or stop it"
  fi
  dk_clean_stale_pidfiles
  quiver_log "starting dockerd in the background (no systemd here); log: $log"
  t0=$(date +%s.%N)
  # setsid: the daemon must outlive this script and its terminal.
  # --userland-proxy=false: published ports are forwarded by iptables NAT
  # (with route_localnet for 127.0.0.1) instead of a docker-proxy process
  # that copies every byte of every connection: on this 2-core machine the
  # proxy cost the cluster a third to nearly half of its request rate (64
  # clients: writes 13.7k vs 20.8k/s, linearizable point lookups 17.5k vs
  # 27.1k/s, stale 22.6k vs 40.8k/s).  A daemon that was
  # already running is used as it is.
  # shellcheck disable=SC2016  # expanded by the inner shell
  dk_as_root sh -c 'setsid dockerd --userland-proxy=false >>"$1" 2>&1 </dev/null & echo $! >"$2"' sh "$log" "$state/dockerd.started"
  if ! dk_wait_daemon "$deadline"; then
    tail -n 30 "$log" >&2
    quiver_die "dockerd did not answer \`docker info\` within ${QUIVER_DOCKER_TIMEOUT_S}s (log: $log)"
  fi
  # Record the daemon's own pid (its pid file), in case a wrapper forked.
  if pid=$(dk_live_pid "$QUIVER_DOCKERD_PIDFILE" dockerd); then
    # shellcheck disable=SC2016  # expanded by the inner shell
    dk_as_root sh -c 'echo "$1" >"$2"' sh "$pid" "$state/dockerd.started"
  fi
  quiver_log "dockerd answers after $(dk_elapsed "$t0")s"
}

# Records the running dockerd (its pid file) as started by us, so that
# dk_daemon_stop_if_ours stops it: for a daemon that did not answer before we
# installed docker.io and answers after (a postinst allowed to start it).
dk_daemon_adopt() {
  local state pid
  pid=$(dk_live_pid "$QUIVER_DOCKERD_PIDFILE" dockerd) || return 1
  state=$(dk_state_dir)
  # shellcheck disable=SC2016  # expanded by the inner shell
  dk_as_root sh -c 'echo "$1" >"$2"' sh "$pid" "$state/dockerd.started"
  quiver_log "dockerd pid $pid was started by the docker.io installation; recorded as ours"
}

# Seconds since T0 (from `date +%s.%N`), one decimal.
dk_elapsed() {
  awk -v t0="$1" -v t1="$(date +%s.%N)" 'BEGIN { printf "%.1f", t1 - t0 }'
}

# Stops dockerd only when dk_daemon_ensure started it (state file) and that
# very process is still the daemon; a daemon the user started is left alone.
dk_daemon_stop_if_ours() {
  local state_file="$QUIVER_DEPLOY_STATE_DIR/dockerd.started" pid deadline
  [ -f "$state_file" ] || { quiver_log "dockerd: not started by ./deploy/up; leaving it running"; return 0; }
  pid=$(tr -dc '0-9' < "$state_file")
  if [ -z "$pid" ] || [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != dockerd ] || dk_pid_is_zombie "$pid"; then
    quiver_log "dockerd started by ./deploy/up is gone already"
    dk_as_root rm -f "$state_file"
    dk_clean_stale_pidfiles
    return 0
  fi
  quiver_log "stopping dockerd (pid $pid, started by ./deploy/up or ./deploy/down)"
  dk_as_root kill -TERM "$pid" 2>/dev/null || true
  deadline=$(( $(date +%s) + 30 ))
  while dk_pid_running "$pid" && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.2; done
  if dk_pid_running "$pid"; then
    quiver_warn "dockerd pid $pid did not stop within 30s; sending SIGKILL"
    dk_as_root kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
  fi
  dk_as_root rm -f "$state_file"
  dk_clean_stale_pidfiles
}

# Prints "URI" of this machine's main Debian archive (not the security one),
# read from the deb822 *.sources first, then one-line sources lists.  Nothing
# is hard-coded: debootstrap uses whatever mirror this machine is configured with.
dk_debian_mirror() {
  local kind=${1:-main} f found=""
  if [ "$kind" = main ] && [ -n "${QUIVER_DEBIAN_MIRROR:-}" ]; then
    printf '%s\n' "$QUIVER_DEBIAN_MIRROR"; return 0
  fi
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    found=$(awk -v kind="$kind" '
      function flush(   n, u, i) {
        if (done) return
        if (uris != "" && types ~ /(^| )deb( |$)/ && enabled != "no") {
          n = split(uris, u, /[ \t]+/)
          for (i = 1; i <= n; i++) {
            if (u[i] == "") continue
            if (kind == "security" && (u[i] ~ /security/ || suites ~ /-security/)) { print u[i]; done = 1; exit }
            if (kind == "main" && u[i] !~ /security/ && suites !~ /-security/ && suites ~ /bookworm/) { print u[i]; done = 1; exit }
          }
        }
        uris = ""; types = ""; suites = ""; enabled = ""
      }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      { key = tolower($1); sub(/:$/, "", key); val = $0; sub(/^[^:]*:[ \t]*/, "", val) }
      key == "types"   { types = val }
      key == "uris"    { uris = val }
      key == "suites"  { suites = val }
      key == "enabled" { enabled = tolower(val) }
      END { flush() }' "$f")
    [ -n "$found" ] && break
  done
  if [ -z "$found" ]; then
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
      [ -f "$f" ] || continue
      found=$(awk -v kind="$kind" '
        $1 == "deb" {
          i = 2
          if ($2 ~ /^\[/) { for (; i <= NF; i++) if ($i ~ /\]$/) { i++; break } }
          sec = ($i ~ /security/ || $(i + 1) ~ /-security/)
          if ((kind == "security") == sec) { print $i; exit }
        }' "$f")
      [ -n "$found" ] && break
    done
  fi
  [ -n "$found" ] || return 1
  printf '%s\n' "$found"
}

dk_image_exists() { dk image inspect "$1" >/dev/null 2>&1; }

# Provides $QUIVER_BASE_IMAGE: present -> nothing; else `docker pull`; else a
# minbase debootstrap of bookworm from this machine's mirror, imported under
# the same name, so that the Dockerfile's FROM line finds it without a registry.
dk_base_image_ensure() {
  if dk_image_exists "$QUIVER_BASE_IMAGE"; then
    quiver_log "base image $QUIVER_BASE_IMAGE: present"
    return 0
  fi
  if [ "$QUIVER_PULL" = 0 ]; then
    quiver_log "base image $QUIVER_BASE_IMAGE: not pulling (QUIVER_PULL=0)"
  else
    quiver_log "base image $QUIVER_BASE_IMAGE: trying docker pull"
    # shellcheck disable=SC2046  # the prefix is empty or "sudo"
    if timeout 120 $(dk_sudo_prefix) docker pull "$QUIVER_BASE_IMAGE" >/dev/null 2>&1; then
      quiver_log "base image $QUIVER_BASE_IMAGE: pulled"
      return 0
    fi
  fi
  case "$QUIVER_BASE_IMAGE" in
    debian:bookworm-slim|debian:bookworm) ;;
    *) quiver_die "cannot pull $QUIVER_BASE_IMAGE and only debian:bookworm[-slim] can be made locally" ;;
  esac
  quiver_log "base image: no registry used; building $QUIVER_BASE_IMAGE with debootstrap"
  dk_install_packages debootstrap debian-archive-keyring
  local mirror security root t0
  mirror=$(dk_debian_mirror main) \
    || quiver_die "no Debian mirror in /etc/apt/sources.list{,.d/*}; set QUIVER_DEBIAN_MIRROR=<uri>"
  security=$(dk_debian_mirror security || true)
  root=$(mktemp -d "${TMPDIR:-/var/tmp}/quiver-rootfs.XXXXXX")
  # shellcheck disable=SC2064  # expand now: the trap must remove this very folder
  trap "dk_as_root rm -rf '$root'" EXIT
  t0=$(date +%s.%N)
  quiver_log "debootstrap --variant=minbase bookworm from $mirror (log: $root.log)"
  dk_as_root debootstrap --variant=minbase --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
      bookworm "$root" "$mirror" >"$root.log" 2>&1 || {
    tail -n 30 "$root.log" >&2
    quiver_die "debootstrap failed (full log: $root.log)"
  }
  dk_slim_rootfs "$root" "$mirror" "$security"
  quiver_log "importing the root file system as $QUIVER_BASE_IMAGE"
  dk_as_root tar --numeric-owner -C "$root" -c . \
    | dk import \
        --change 'CMD ["bash"]' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'LABEL org.quiver.base-image="debootstrap --variant=minbase bookworm (made by deploy/up)"' \
        - "$QUIVER_BASE_IMAGE" >/dev/null \
    || quiver_die "docker import of the debootstrapped root file system failed"
  dk_as_root rm -rf "$root" "$root.log"
  trap - EXIT
  quiver_log "base image $QUIVER_BASE_IMAGE made locally in $(dk_elapsed "$t0")s"
}

# What makes the official image "slim", done to the debootstrapped tree: no
# downloaded .debs or package lists, dpkg told to skip documentation, and apt
# sources in deb822 form pointing at the mirror we used (+ security updates
# when this machine has a security source).
dk_slim_rootfs() {
  local root=$1 mirror=$2 security=$3
  # shellcheck disable=SC2016  # expanded by the inner shell
  dk_as_root sh -c '
    set -e
    root=$1 mirror=$2 security=$3
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/* \
           "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/*
    mkdir -p "$root/etc/dpkg/dpkg.cfg.d" "$root/etc/apt/apt.conf.d" "$root/etc/apt/sources.list.d"
    printf "%s\n" "path-exclude /usr/share/doc/*" "path-include /usr/share/doc/*/copyright" \
      "path-exclude /usr/share/man/*" "path-exclude /usr/share/info/*" \
      "path-exclude /usr/share/locale/*" "path-include /usr/share/locale/locale.alias" \
      > "$root/etc/dpkg/dpkg.cfg.d/docker"
    printf "%s\n" "APT::Install-Recommends \"false\";" > "$root/etc/apt/apt.conf.d/docker-norecommends"
    rm -f "$root/etc/apt/sources.list"
    {
      printf "Types: deb\nURIs: %s\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n" "$mirror"
      if [ -n "$security" ]; then
        printf "\nTypes: deb\nURIs: %s\nSuites: bookworm-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n" "$security"
      fi
    } > "$root/etc/apt/sources.list.d/debian.sources"
    : > "$root/etc/hostname"
    rm -f "$root/etc/resolv.conf"
  ' sh "$root" "$mirror" "$security"
}
