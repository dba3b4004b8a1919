#!/usr/bin/env bash
# One prepared check of the engine on a device, for the day a GPU is lent: parity on the device
# against the CPU, reduced precisions, synchronised stage times, memory, the out-of-memory
# sentence (scripts/device_check.py says what). Writes build/device_check.json (and a copy into
# $OUT when that is set, as on the device tool's machine).
#
#   bash scripts/device_check.sh               # the best device here (CUDA, then MPS, then the CPU)
#   DEVICE=cpu bash scripts/device_check.sh    # on the CPU: to know it works before a GPU is lent
#
# It uses .venv where there is one (made by scripts/venv.sh), else python3 as it is (a GPU
# machine's own PyTorch). The tiny vectors come from ../shared/vectors, or $OPENLRM_SHARED/vectors,
# or build/vectors (where a copy travels to a machine without ../shared). SIZES sets the
# resolutions timed (default 256 384 512 on a GPU, 256 on the CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=python3
[ -x .venv/bin/python ] && PYTHON=.venv/bin/python
DEVICE=${DEVICE:-auto}
VECTORS=""
for candidate in "${OPENLRM_SHARED:-../shared}/vectors" build/vectors; do
    if [ -d "$candidate/tiny" ]; then
        VECTORS=$candidate
        break
    fi
done
if [ -z "$VECTORS" ]; then
    echo "error: no tiny vectors: ../shared/vectors, \$OPENLRM_SHARED/vectors or build/vectors" >&2
    exit 1
fi
if [ -z "${SIZES:-}" ]; then
    SIZES="256 384 512"
    if [ "$DEVICE" = cpu ] || ! "$PYTHON" -c "import torch, sys; sys.exit(not (torch.cuda.is_available() or torch.backends.mps.is_available()))"; then
        SIZES=256
    fi
fi
# shellcheck disable=SC2086
status=0
"$PYTHON" scripts/device_check.py --device "$DEVICE" --vectors "$VECTORS" --sizes $SIZES --out build/device_check.json || status=$?
if [ -n "${OUT:-}" ] && [ -f build/device_check.json ]; then
    cp build/device_check.json "$OUT/"
fi
exit $status
