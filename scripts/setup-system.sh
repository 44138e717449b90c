#!/usr/bin/env bash
# Install the Debian packages autosynk's tests and demo use, and make sure PostgreSQL runs.
# Safe to run again; needs root (or sudo) on Debian 12.
set -euo pipefail

PACKAGES=(openssh-server slapd ldap-utils gnupg postgresql redis-server docker-compose chromium)
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  # slapd asks questions on install; our tests run their own slapd with their own config
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# PostgreSQL for the staging tests (trust auth on 127.0.0.1 on these machines)
if command -v pg_lsclusters >/dev/null 2>&1; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  if ! pg_lsclusters -h | awk '{print $4}' | grep -q online; then
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  fi
fi
