#!/usr/bin/env bash
# Second command of the quick start: the whole test suite.
#   unit tests (seconds, no machines), then the live lab (brought up by the
#   tests through `invoke up`, removed at the end) and the drills against it.
# Extra arguments go to pytest, e.g. `scripts/test.sh -m "not live"`.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
# All of tests/, tests/unit first so a broken build shows in seconds (pytest
# merges overlapping paths, so each directory is named once, in this order).
paths=(tests/unit)
for d in tests/*/; do
    [ "${d%/}" = tests/unit ] || paths+=("${d%/}")
done
for f in tests/test_*.py; do
    [ -e "$f" ] && paths+=("$f")
done
$SUDO env ${LAB_TOPOLOGY:+LAB_TOPOLOGY="$LAB_TOPOLOGY"} ${LAB_DIR:+LAB_DIR="$LAB_DIR"} \
    .venv/bin/pytest -ra "${paths[@]}" "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
    echo "test.sh: pytest collected no tests (exit 5): treated as a failure" >&2
fi
exit "$rc"
