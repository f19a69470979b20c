# shellcheck shell=bash disable=SC2034  # QUICK is read by the sourcing script
# The one argument the measurement scripts take: `--quick` sets QUICK=1;
# `-h`/`--help` prints the calling script's header comment; anything else
# is a usage error (exit 2). Sourced, not run: `parse_quick "$@"`.

parse_quick() {
    QUICK=0
    case ${1:-} in
        --quick) QUICK=1 ;;
        "") ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "usage: $0 [--quick]" >&2
            exit 2
            ;;
    esac
}
