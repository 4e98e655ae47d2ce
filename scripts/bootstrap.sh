#!/usr/bin/env bash
# Create the project's virtual environment and install the package with its dev tools.
# uv is used when it can be installed (much faster); plain pip is the fallback.
set -euo pipefail
venv=${1:-.venv}
py=""
for cand in python3.13 python3.12 python3.11 python3; do
  if command -v "$cand" >/dev/null 2>&1 &&
     "$cand" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
    py=$cand; break
  fi
done
[[ -n $py ]] || { echo "bootstrap: Python >= 3.11 is required" >&2; exit 1; }
# 3.11 is the version CI and the demo are measured on; prefer it when present.
command -v python3.11 >/dev/null 2>&1 && py=python3.11
echo "bootstrap: creating $venv with $($py --version)"
rm -rf "$venv"
"$py" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
# The newest supported Airflow, as its release was built (scripts/airflow-releases.txt says how),
# then this package and its dev tools next to it, moving only what they need.
read -r airflow released _ < <(grep -v '^#' scripts/airflow-releases.txt | grep . | tail -1)
if "$venv/bin/python" -m pip install --quiet --disable-pip-version-check uv >/dev/null 2>&1; then
  echo "bootstrap: installing Airflow $airflow (as released $released) with uv"
  "$venv/bin/uv" pip install --quiet --python "$venv/bin/python" "apache-airflow==$airflow" --exclude-newer "$released"
  "$venv/bin/uv" pip install --quiet --python "$venv/bin/python" "apache-airflow==$airflow" -e '.[dev]'
else
  echo "bootstrap: installing Airflow $airflow with pip (no release-time pins: pip cannot cut by date)"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "apache-airflow==$airflow" -e '.[dev]'
fi
touch "$venv/.installed"
echo "bootstrap: ready"
