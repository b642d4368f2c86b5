#!/usr/bin/env bash
# Create (or reuse) the Rasa 3.6 environment Sapa's Rasa backend runs in.
#
#   bash nlu/rasa/setup.sh            # prints the environment's path on the last line
#
# Rasa 3.6 needs Python < 3.11, so it lives in its own virtual environment, by default
# ~/.cache/sapa/rasa-<hash of requirements.txt>, shared by every checkout on the machine (it is
# ~1.5 GB; reinstalling it per clone would cost minutes). Override with SAPA_RASA_VENV, and the
# interpreter with SAPA_RASA_PYTHON. Only PyPI is needed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
req="$here/requirements.txt"
hash="$(sha256sum "$req" | cut -c1-12)"
venv="${SAPA_RASA_VENV:-$HOME/.cache/sapa/rasa-$hash}"

if [ -x "$venv/bin/rasa" ] && [ -f "$venv/.sapa-installed" ]; then
  echo "$venv"
  exit 0
fi

# A pyenv shim can exist on PATH and still refuse to run, so each candidate must actually start and
# report a version Rasa 3.6 supports.
usable() { "$1" -c 'import sys; sys.exit(not (3, 8) <= sys.version_info[:2] < (3, 11))' >/dev/null 2>&1; }
if [ -e "$venv" ] && [ ! -f "$venv/pyvenv.cfg" ]; then
  echo "nlu/rasa/setup.sh: $venv exists and is not a virtual environment; refusing to replace it" >&2
  exit 1
fi
python="${SAPA_RASA_PYTHON:-}"
if [ -z "$python" ]; then
  for candidate in "$HOME"/.pyenv/versions/3.10*/bin/python3.10 python3.10 python3.9 python3.8; do
    if command -v "$candidate" >/dev/null 2>&1 && usable "$candidate"; then
      python="$(command -v "$candidate")"
      break
    fi
  done
fi
if [ -z "$python" ]; then
  echo "nlu/rasa/setup.sh: Rasa 3.6 needs Python 3.8-3.10; install one (e.g. pyenv install 3.10)" \
       "or point SAPA_RASA_PYTHON at it" >&2
  exit 1
fi

echo "creating the Rasa environment in $venv with $python (a few minutes, ~1.5 GB)" >&2
rm -rf "$venv"  # a half-finished earlier attempt
mkdir -p "$(dirname "$venv")"
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip 'setuptools<70' wheel >&2
"$venv/bin/pip" install --quiet -r "$req" >&2
"$venv/bin/rasa" --version >&2
touch "$venv/.sapa-installed"
echo "$venv"
