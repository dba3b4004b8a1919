#!/usr/bin/env bash
# End-to-end suite in a real Blender binary (Debian trixie's Blender 4.3, Python 3.13):
# the extension built for it, installed with Blender's own command line, then
#   headless:    blender -b --python-expr "bpy.ops.openlrm.image_to_3d(...)" -> .blend, checked;
#                the same with topology='QUADS' (the remesh in a second Blender process);
#   interactive: Blender under Xvfb, the sidebar tab driven from timers (tests/e2e/drive.py).
# Screenshots and results go to build/e2e/artifacts/. Needs root (debootstrap, chroot).
#
#   bash tests/e2e/run.sh        # OPENLRM_E2E_CACHE moves the Debian root (default ~/.cache/openlrm-blender/e2e)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CACHE=${OPENLRM_E2E_CACHE:-$HOME/.cache/openlrm-blender/e2e}
DEBIAN="$CACHE/trixie"
SHARED=${OPENLRM_SHARED:-$REPO/../shared}
WORK="$REPO/build/e2e"
ARTIFACTS="$WORK/artifacts"

log() { printf '[e2e %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
timed() {  # timed NAME COMMAND...: run it and say how long it took
    local name=$1 start=$SECONDS
    shift
    "$@"
    log "$name: $((SECONDS - start)) s"
    echo "$name $((SECONDS - start))" >>"$ARTIFACTS/timings.txt"
}

probe=$(mktemp -d)
if [ "$(id -u)" != 0 ] || ! mount -t tmpfs none "$probe" 2>/dev/null; then
    rmdir "$probe"
    log "SKIPPED: debootstrap and chroot need root allowed to mount file systems"
    exit 0
fi
umount "$probe" && rmdir "$probe"
rm -rf "$WORK"
mkdir -p "$ARTIFACTS" "$WORK/home"

status=0
timed "set-up of the Debian root (cached)" bash "$HERE/setup.sh" "$DEBIAN" || status=$?
if [ "$status" = 77 ]; then
    log "SKIPPED: the Debian package mirror or debootstrap is unreachable, so no real Blender can be installed"
    exit 0
elif [ "$status" != 0 ]; then
    exit "$status"
fi

# shellcheck disable=SC1091
. "$REPO/scripts/venv.sh"
# shellcheck disable=SC1091
. "$HERE/chroot.sh"

timed "extension build for a system Python 3.13" python "$REPO/build.py" --platform linux-x64 --blender system-3.13 \
    --no-torch --output-dir "$WORK/dist" >"$ARTIFACTS/build.log"
cp -r "$SHARED/vectors/tiny" "$WORK/tiny"
mkdir -p "$WORK/batch"
cp "$SHARED/vectors/tiny/input.png" "$WORK/batch/a.png"
cp "$SHARED/vectors/tiny/input.png" "$WORK/batch/b.png"
echo "not a picture" >"$WORK/batch/broken.png"
cp "$HERE"/*.py "$WORK/"
timed "object model (small layout)" python - "$CACHE/small-object" <<'EOF'
import sys
from pathlib import Path

from openlrm_blender.engine.models.openlrm.config import ModelConfig
from tests.support.random_models import PUBLISHED_CONFIGS, object_model, save_model

folder = Path(sys.argv[1])
if not (folder / "model.safetensors").is_file():
    save_model(object_model(ModelConfig.from_dict(PUBLISHED_CONFIGS["small"])), folder, PUBLISHED_CONFIGS["small"])
EOF
cp -r "$CACHE/small-object" "$WORK/object"

mkdir -p "$DEBIAN/e2e"
XVFB=""
cleanup() {
    [ -n "$XVFB" ] && kill "$XVFB" 2>/dev/null
    mountpoint -q "$DEBIAN/e2e" && umount "$DEBIAN/e2e"
    chroot_unmount "$DEBIAN"
}
trap cleanup EXIT
chroot_mount "$DEBIAN"
mount --bind "$WORK" "$DEBIAN/e2e"

in_root() {  # a command inside the Debian root, with a fresh Blender user folder under /e2e/home
    chroot "$DEBIAN" /usr/bin/env -i HOME=/e2e/home PATH=/usr/bin:/bin LANG=C.UTF-8 "$@"
}
blender_version=$(in_root blender --version | head -n1)
python_and_torch=$(in_root python3 -c 'import sys, torch; print("Python", sys.version.split()[0], "PyTorch", torch.__version__)')
log "$blender_version, $python_and_torch (the system's)"

ZIP=$(cd "$WORK/dist" && ls openlrm_blender-*.zip)
timed "install with blender --command extension install-file" \
    in_root blender -b --command extension install-file -r user_default -e "/e2e/dist/$ZIP" \
    >"$ARTIFACTS/install.log" 2>&1 || { cat "$ARTIFACTS/install.log"; exit 1; }
in_root blender -b --python-exit-code 1 --python /e2e/preferences.py >"$ARTIFACTS/preferences.log" 2>&1 \
    || { cat "$ARTIFACTS/preferences.log"; exit 1; }

headless() {
    in_root blender -b --python-exit-code 1 --python-expr "
import bpy
result = bpy.ops.openlrm.image_to_3d(filepath='/e2e/tiny/input.png', weights_dir='/e2e/tiny', input_size=56,
                                     resolution=32, recenter=False)
assert result == {'FINISHED'}, result
bpy.ops.wm.save_as_mainfile(filepath='/e2e/headless.blend')
" >"$ARTIFACTS/headless.log" 2>&1 || { cat "$ARTIFACTS/headless.log"; return 1; }
    in_root blender -b /e2e/headless.blend --python-exit-code 1 --python /e2e/check_blend.py \
        >"$ARTIFACTS/headless-check.log" 2>&1 || { cat "$ARTIFACTS/headless-check.log"; return 1; }
    grep -h "OpenLRM:" "$ARTIFACTS/headless.log" "$ARTIFACTS/headless-check.log"
}
timed "headless: generate, save, reopen and check" headless

headless_quads() {  # the remesh process as a real Blender starts it: this binary, in the background
    in_root blender -b --python-exit-code 1 --python-expr "
import bpy
result = bpy.ops.openlrm.image_to_3d(filepath='/e2e/tiny/input.png', weights_dir='/e2e/tiny', input_size=56,
                                     resolution=32, recenter=False, topology='QUADS', faces=2000)
assert result == {'FINISHED'}, result
obj = bpy.context.view_layer.objects.active
sizes = [len(face.vertices) for face in obj.data.polygons]
quads = sum(size == 4 for size in sizes)
assert quads >= 0.95 * len(sizes) and abs(len(sizes) - 2000) <= 500, (quads, len(sizes))
assert obj.data.color_attributes.active_color_name == 'Color', obj.data.color_attributes.keys()
print(f'OpenLRM: quads check passed: {len(sizes)} faces, {quads} quads, by {bpy.app.binary_path} -b')
" >"$ARTIFACTS/headless-quads.log" 2>&1 || { cat "$ARTIFACTS/headless-quads.log"; return 1; }
    grep -h "OpenLRM: quads check" "$ARTIFACTS/headless-quads.log"
}
timed "headless: quads by a Blender process of their own" headless_quads

interactive() {
    chroot "$DEBIAN" /usr/bin/Xvfb :99 -screen 0 1280x800x24 -nolisten tcp >"$ARTIFACTS/xvfb.log" 2>&1 &
    XVFB=$!
    sleep 2
    in_root DISPLAY=:99 LIBGL_ALWAYS_SOFTWARE=1 timeout 600 blender --python /e2e/drive.py \
        >"$ARTIFACTS/interactive.log" 2>&1 || true
    kill "$XVFB" 2>/dev/null || true
    XVFB=""
    python "$HERE/verdict.py" "$ARTIFACTS" || { tail -n 40 "$ARTIFACTS/interactive.log"; return 1; }
}
timed "interactive: sidebar under Xvfb" interactive
log "passed; artefacts in ${ARTIFACTS#"$REPO"/}"
