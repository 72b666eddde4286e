#!/usr/bin/env bash
# Make sure Debian's Chromium is there for the browser tests (tests/browser/).
#
#   scripts/ensure_chromium.sh        # prints which path it took; exits non-zero if it cannot
#
# Input: CHROMIUM (default /usr/bin/chromium), the binary tests/browser/conftest.py launches.
# If that binary runs, it is used as it is. Otherwise, as root, Debian's `chromium` package is
# installed with apt-get (Playwright's own `playwright install` downloads a browser build, which
# this project never does). Not root and no Chromium: it says what to run and fails.
set -euo pipefail

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
# Other apt-get runs on the machine (another checkout's set-up) hold the dpkg lock for a while.
APT_LOCK_WAIT_SECS=600

log() { printf 'ensure_chromium: %s\n' "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

version_of() { "$CHROMIUM" --version 2>/dev/null </dev/null | head -n 1; }

if [[ -x $CHROMIUM ]] && version=$(version_of) && [[ -n $version ]]; then
    log "using $CHROMIUM ($version), already installed"
    exit 0
fi

if [[ $CHROMIUM != /usr/bin/chromium ]]; then
    die "CHROMIUM=$CHROMIUM does not run; unset CHROMIUM to use Debian's /usr/bin/chromium"
fi
if [[ $(id -u) -ne 0 ]]; then
    die "$CHROMIUM is missing and this is not root: run 'sudo apt-get install -y chromium', then again"
fi
command -v apt-get >/dev/null 2>&1 || die "$CHROMIUM is missing and there is no apt-get to install it"

log "$CHROMIUM is missing: installing Debian's chromium package with apt-get ..."
# apt's progress goes to a log, shown only when something fails (a few hundred lines otherwise).
APT_LOG=$(mktemp -t ensure_chromium.XXXXXX)
trap 'rm -f -- "$APT_LOG"' EXIT
apt() {
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout="$APT_LOCK_WAIT_SECS" "$@" \
        </dev/null >>"$APT_LOG" 2>&1
}
# A fresh machine's package lists may be empty or old: refresh them once before installing.
apt update -qq || log "apt-get update failed; trying the install with the lists there are"
if ! apt install -y chromium; then
    tail -n 30 -- "$APT_LOG" >&2
    die "apt-get install -y chromium failed (its last lines are above); the browser tests need $CHROMIUM"
fi

version=$(version_of) || true
[[ -n ${version:-} ]] || die "chromium was installed but '$CHROMIUM --version' does not run"
log "installed $CHROMIUM ($version) with apt-get"
