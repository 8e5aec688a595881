# shellcheck shell=bash
# Shared helpers for the bash scripts in scripts/ and tests/: progress lines, failing clearly,
# root checks, and talking to the Docker engine. Source it; it sets no shell options and runs
# nothing on its own, so callers keep control of `set -euo pipefail`.

# The repository root, whichever script sources this file.
ORCH_ROOT=${ORCH_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}

# Progress goes to stderr so a script's stdout stays usable for results.
orch_log() {
    printf '%s: %s\n' "${ORCH_LOG_PREFIX:-${0##*/}}" "$*" >&2
}

orch_warn() {
    orch_log "warning: $*"
}

orch_die() {
    orch_log "error: $*"
    exit 1
}

# Sets SUDO to "" when root, to "sudo" when sudo works without a password, else fails naming
# what needed root ($1). Callers run privileged commands as `$SUDO cmd`.
# shellcheck disable=SC2034
need_root_or_sudo() {
    local why=${1:-this step}
    if [[ $(id -u) -eq 0 ]]; then
        SUDO=""
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo"
    else
        orch_die "$why needs root: run as root or with passwordless sudo"
    fi
}

# Seconds since the epoch with milliseconds, for elapsed-time lines.
orch_now() {
    date +%s.%N | cut -c1-14
}

# Elapsed seconds since a value of orch_now, to two decimals.
orch_elapsed() {
    awk -v a="$1" -v b="$(orch_now)" 'BEGIN { printf "%.2f", b - a }'
}

# True when a Docker engine answers on the endpoint the docker CLI would use (DOCKER_HOST or the
# default socket). Bounded ($1 seconds, default 10) so a wedged engine cannot hang a script.
# shellcheck disable=SC2120
docker_answers() {
    command -v docker >/dev/null 2>&1 || return 1
    timeout "${1:-10}" docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

# True when DOCKER_HOST names an engine other than the local default socket: scripts then only
# check that it answers and never start one.
docker_host_is_remote() {
    [[ -n ${DOCKER_HOST:-} && $DOCKER_HOST != "unix:///var/run/docker.sock" ]]
}

# Polls "$@" every 0.2 s until it succeeds or $1 seconds have passed (then returns 1).
orch_wait_until() {
    local limit=$1
    shift
    local deadline=$((SECONDS + limit))
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

# The sha256 of a file, hex only.
orch_sha256() {
    sha256sum "$1" | cut -d' ' -f1
}
