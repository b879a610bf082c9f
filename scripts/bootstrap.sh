#!/usr/bin/env bash
# Installs everything SOA's tests and `soa` need on a fresh Debian machine, idempotently:
# Debian packages (when missing), the project venv (.venv) and checkov in its own venv
# (.venv-checkov: in a shared venv pip picks an old checkov whose bc-python-hcl2 breaks python-hcl2).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
# Real servers for the platform tests (tests/support/): PostgreSQL, Redis, Janus + coturn (meetings), clamd
# (virus scans of files) and libmagic (file type sniffing). SOA_APT_PACKAGES overrides, "" skips.
APT_PACKAGES=(${SOA_APT_PACKAGES-postgresql redis-server libmagic1 janus coturn clamav-daemon})

need_apt=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$p")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo ">> apt-get install ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

stamp=.venv/.soa-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo ">> python venv .venv (project + test extras)"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[test]'
  touch "$stamp"
fi

if [ "${SOA_WITH_CHECKOV:-1}" = "1" ] && [ ! -x .venv-checkov/bin/checkov ]; then
  echo ">> checkov venv .venv-checkov"
  "$PY" -m venv .venv-checkov
  .venv-checkov/bin/pip install -q --upgrade pip
  .venv-checkov/bin/pip install -q 'checkov>=3.2'
fi
