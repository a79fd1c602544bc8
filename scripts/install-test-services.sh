#!/usr/bin/env bash
# Installs the system services the observability tests run for real (Debian packages):
# prometheus (with promtool), prometheus-pushgateway and prometheus-alertmanager (amtool), and
# prometheus-statsd-exporter where the package index has it (Debian 12 "bookworm" does not: then
# the statsd-exporter tests skip, saying so); and chromium, the browser the browser tier
# (tests/browser, Playwright) drives: Playwright never downloads one.
# Idempotent: does nothing when the binaries are already there. Needs root or sudo and the Debian registry; without them it
# says so and exits 0, and the tests that need the binaries skip with a message naming them.
set -uo pipefail

need=()
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-pushgateway >/dev/null 2>&1 || need+=(prometheus-pushgateway)
command -v amtool >/dev/null 2>&1 || need+=(prometheus-alertmanager)
[ -x /usr/bin/chromium ] || need+=(chromium)
# Optional: installed only when the package index has it (a missing package would fail the
# whole apt-get install below).
if ! command -v prometheus-statsd-exporter >/dev/null 2>&1 \
   && ! command -v statsd_exporter >/dev/null 2>&1 \
   && apt-cache show prometheus-statsd-exporter >/dev/null 2>&1; then
  need+=(prometheus-statsd-exporter)
fi
if [ "${#need[@]}" -eq 0 ]; then
  exit 0
fi
# Unique package names.
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-test-services: no apt-get here; install ${need[*]} yourself" \
       "(the tests that need them will skip)" >&2
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO=(sudo -n)
else
  echo "install-test-services: not root and no password-less sudo; install ${need[*]}" \
       "yourself (the tests that need them will skip)" >&2
  exit 0
fi

echo "install-test-services: apt-get install ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Wait for another apt run rather than fail; refresh the index only if the install misses it.
apt=( "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=300 -y -q --no-install-recommends )
if ! "${apt[@]}" install "${need[@]}" >/dev/null; then
  "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=300 -q update >/dev/null \
    && "${apt[@]}" install "${need[@]}" >/dev/null \
    || { echo "install-test-services: apt-get install ${need[*]} failed" >&2; exit 0; }
fi
