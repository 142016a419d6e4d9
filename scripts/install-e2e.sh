#!/usr/bin/env bash
# Installs what the browser end-to-end test (e2e/) needs, idempotently: Debian's chromium and
# playwright-core from the committed e2e/package-lock.json. No browser is downloaded by npm.
# Exit 0 with the browser ready; exit 3 after one "e2e: skipped: ..." line if chromium cannot be had (CI
# then skips the e2e step); any other failure is an error.
set -euo pipefail
cd "$(dirname "$0")/.."

have_chromium() { [ -x /usr/bin/chromium ] && /usr/bin/chromium --version >/dev/null 2>&1; }

if ! have_chromium; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "e2e: skipped: chromium could not be installed (no apt-get on this machine)"
    exit 3
  fi
  sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo -n"; else
      echo "e2e: skipped: chromium could not be installed (not root and no sudo)"
      exit 3
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Only refresh the package lists when they know no chromium.
  if ! apt-cache policy chromium 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    $sudo apt-get update -qq >/dev/null 2>&1 || true
  fi
  if ! $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 || ! have_chromium; then
    echo "e2e: skipped: chromium could not be installed (apt-get install chromium failed)"
    exit 3
  fi
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-cache policy nodejs 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    apt-get update -qq >/dev/null 2>&1 || true
  fi
  apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

# playwright-core never downloads browsers; the env var makes sure of it.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
want=$(node -p "require('./e2e/package-lock.json').packages['node_modules/playwright-core'].version")
have=$(node -p "try { require('./e2e/node_modules/playwright-core/package.json').version } catch (e) { '' }" 2>/dev/null || true)
if [ "$want" != "$have" ]; then
  (cd e2e && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
echo "e2e: $(/usr/bin/chromium --version 2>/dev/null | head -1), playwright-core $want"
