#!/usr/bin/env bash
# The article's claims across versions (docs/versions.md). For each Patroni/PostgreSQL pair: a lab
# from topology.yml with that pair's options, `invoke up`, the drills, `invoke down`; then the version
# table of docs/drills/versions.md (en and zh) from the runs, by `invoke docs-tables --matrix`.
#
#   scripts/version-matrix.sh                                   # every pair below, every drill
#   PAIRS="3.3.8/15 4.1.5/17" DRILLS=replica-pg-stop,primary-patroni-kill scripts/version-matrix.sh
#
# PAIRS: patroni/postgres pairs; DRILLS: `invoke exercise` names (comma-separated, or all).
# Each pair's lab keeps its own state, evidence and runs in .lab/matrix/<patroni>-pg<postgres>/ and
# uses the default lab's addresses, so the default lab must be down first (this script checks).
# A pair that does not come up is said, its output kept in that folder, and the next pair runs; the
# exit status is 1 when any pair did not come up or any drill failed or could not observe.
set -uo pipefail
cd "$(dirname "$0")/.."
PAIRS="${PAIRS:-2.1.7/13 3.3.8/13 4.1.5/13 2.1.7/15 3.3.8/15 4.1.5/15 4.1.5/17}"
DRILLS="${DRILLS:-all}"
PY=.venv/bin/python
INVOKE=.venv/bin/invoke
[ -x "$INVOKE" ] || { echo "version-matrix: no .venv here: run scripts/bootstrap.sh --no-up first" >&2; exit 2; }

phase=$($PY -c 'from labcore import state; print(state.load().phase)')
if [ "$phase" != absent ] && [ "$phase" != down ]; then
    echo "version-matrix: the default lab is $phase on the same addresses: \`invoke down\` first" >&2
    exit 2
fi

# one package cache for every pair (they run one after another): each Debian release's packages are
# downloaded once, whatever the Patroni
export INVOKE_LAB_APT_CACHE="${INVOKE_LAB_APT_CACHE:-$PWD/.lab/cache/apt}"
status=0
runs=()
for pair in $PAIRS; do
    patroni=${pair%/*} postgres=${pair#*/}
    dir=.lab/matrix/${patroni}-pg${postgres}
    mkdir -p "$dir"
    # the shipped topology with this pair's options; a pair the lab refuses stops here, with its reason
    if ! $PY - "$dir/topology.yml" "$patroni" "$postgres" <<'EOF'
import sys
import yaml
from labcore import topology
out, patroni, postgres = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = yaml.safe_load(topology.DEFAULT_PATH.read_text())
data["options"].update(patroni_version=patroni, postgres_version=postgres)
try:
    topology.parse(data, topology.DEFAULT_PATH)
except topology.TopologyError as e:
    sys.exit(f"refused: {e}")
with open(out, "w") as f:
    yaml.safe_dump(data, f, sort_keys=False)
EOF
    then status=1; continue; fi
    export LAB_TOPOLOGY=$PWD/$dir/topology.yml LAB_DIR=$PWD/$dir
    echo "=== Patroni $patroni on PostgreSQL $postgres ($dir)"
    started=$(date +%s)
    if ! $INVOKE up > "$dir/up.log" 2>&1; then
        echo "    up failed after $(( $(date +%s) - started )) s: $(tail -n 1 "$dir/up.log")"
        $INVOKE down > "$dir/down.log" 2>&1
        status=1; unset LAB_TOPOLOGY LAB_DIR; continue
    fi
    echo "    up in $(( $(date +%s) - started )) s"
    $INVOKE exercise "$DRILLS" --auto > "$dir/drills.log" 2>&1 || status=1
    tail -n 2 "$dir/drills.log" | sed "s/^/    /"
    runs+=(--run "$(ls -d "$dir"/runs/*/ | tail -n 1)")
    $INVOKE down > "$dir/down.log" 2>&1 || status=1
    unset LAB_TOPOLOGY LAB_DIR
done
if [ ${#runs[@]} -gt 0 ]; then
    $INVOKE docs-tables --matrix "${runs[@]}"
fi
exit $status
