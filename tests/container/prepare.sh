#!/usr/bin/env bash
# Make a machine ready for the container suite (tests/container), as root:
#   - podman and runc from Debian (crun fails here: "cgroups in hybrid mode not
#     supported"), debootstrap for the base image, tmux for the `-it` scenario;
#   - containers.conf: no default rlimits (setting RLIMIT_NPROC fails with EPERM
#     inside these sandboxes) and runc as the runtime;
#   - the base image localhost/pyinit-base: Debian bookworm minbase with python3,
#     made with debootstrap (no image registry is reachable) and cached under
#     /var/tmp keyed by date, so reruns on the same day take seconds.
# Idempotent; prints one line naming what is missing when it cannot go on.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
[ "$(id -u)" = 0 ] || { echo "container suite: needs root (podman as root)" >&2; exit 1; }

need=()
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || need+=(runc)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v tmux >/dev/null || need+=(tmux)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null \
    || { echo "container suite: cannot install ${need[*]} with apt-get" >&2; exit 1; }
fi

conf=/etc/containers/containers.conf
mkdir -p /etc/containers
touch "$conf"
if ! grep -q '^[[:space:]]*default_ulimits' "$conf"; then
  if grep -q '^\[containers\]' "$conf"; then
    sed -i 's/^\[containers\]$/[containers]\ndefault_ulimits = []/' "$conf"
  else
    printf '\n[containers]\ndefault_ulimits = []\n' >> "$conf"
  fi
fi
if ! grep -q '^[[:space:]]*runtime[[:space:]]*=' "$conf"; then
  if grep -q '^\[engine\]' "$conf"; then
    sed -i 's/^\[engine\]$/[engine]\nruntime = "runc"/' "$conf"
  else
    printf '\n[engine]\nruntime = "runc"\n' >> "$conf"
  fi
fi

# The Debian mirror the host's apt uses (deb822 or one-line sources).
mirror=$(grep -hoE '^(URIs:|deb) +[^ ]*debian/?( |$)' /etc/apt/sources.list \
           /etc/apt/sources.list.d/* 2>/dev/null | awk '{print $2}' | head -n1 || true)
[ -n "$mirror" ] || { echo "container suite: no Debian mirror in /etc/apt/sources*" >&2; exit 1; }

# Packages of the base image: python3 (3.11 in bookworm) and venv; procps so that
# `podman exec ... ps` can show zombies. Not tini: README's drop-in example links
# pyinit to /usr/bin/tini, as on python:3.11-slim, which has no tini either.
packages=python3,python3-venv,procps
# The cache key: the day (Debian's security updates) and the package list.
day=$(date +%Y%m%d)-$(echo "$packages" | md5sum | cut -c1-8)
image=localhost/pyinit-base
cache=/var/tmp/pyinit-base-$day.tar
if ! podman image exists "$image:$day"; then
  if [ ! -s "$cache" ]; then
    root=$(mktemp -d /var/tmp/pyinit-base-root.XXXXXX)
    log=/var/tmp/pyinit-base-$day.log
    if ! debootstrap --variant=minbase --include="$packages" bookworm "$root" "$mirror" \
        >"$log" 2>&1; then
      echo "container suite: debootstrap of bookworm from $mirror failed (see $log)" >&2
      rm -rf "$root"; exit 1
    fi
    rm -rf "$root"/var/cache/apt/archives/*.deb
    tar -C "$root" -cf "$cache.part" . && mv "$cache.part" "$cache"
    rm -rf "$root"
    find /var/tmp -maxdepth 1 -name 'pyinit-base-*.tar' ! -name "${cache##*/}" -delete
  fi
  podman import --quiet "$cache" "$image:$day" >/dev/null
fi
podman tag "$image:$day" "$image:latest"
echo "container suite: podman $(podman version --format '{{.Client.Version}}'), runc, $image:$day ready"
