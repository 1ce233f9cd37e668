#!/usr/bin/env bash
# The lab's timings against the bare baseline (scripts/bare-up.sh), in one run:
# cold up, second provision, idle memory, down, warm up, rebuild (and with
# --drills `invoke exercise all --auto`), then the bare script cold and warm.
# Prints the table and lab/bare ratios, writes $LAB_DIR/bench/bench-<time>.json.
#
#   LAB_TOPOLOGY=.instance/topology.yml LAB_DIR=.instance/lab scripts/bench.sh [--drills] [--no-bare]
#
# It tears the instance down and up several times: never point it at a lab in use.
# The cold run removes this bench's own node images (LAB_NODE_IMAGE, by default
# patroni-lab/bench-<lab name>:bookworm) and package cache; the mmdebstrap base
# image and Patroni's wheelhouse are kept (both are host-wide caches).
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
name=$(.venv/bin/python -c 'from labcore.topology import load; print(load().name)')
export LAB_NODE_IMAGE="${LAB_NODE_IMAGE:-patroni-lab/bench-$name:bookworm}"
exec $SUDO env LAB_NODE_IMAGE="$LAB_NODE_IMAGE" ${LAB_TOPOLOGY:+LAB_TOPOLOGY="$LAB_TOPOLOGY"} \
    ${LAB_DIR:+LAB_DIR="$LAB_DIR"} .venv/bin/python -m lab.bench run "$@"
