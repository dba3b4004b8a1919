#!/usr/bin/env bash
# Builds (once) a Debian trixie root holding the distribution's Blender, Xvfb and
# ImageMagick, so the end-to-end suite drives the Blender users actually run; packages
# added to the list later are installed into the existing root.
# Exit status 77 means debootstrap or the package mirror could not be reached: callers skip.
set -euo pipefail

ROOT=${1:?usage: setup.sh ROOT}
PACKAGES=(blender xvfb xauth libgl1-mesa-dri x11-apps imagemagick
          python3-torch python3-safetensors python3-pil python3-onnxruntime
          # Debian's PyTorch falls back to the reference BLAS without it: 30x slower.
          libopenblas0-pthread)
STAMP="$ROOT/.openlrm-packages"

[ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "${PACKAGES[*]}" ] && exit 0

mirror() {
    # The first of the machine's own apt repositories that carries trixie: the
    # package mirror reachable from here.
    local uri
    for uri in $(apt-get indextargets --format '$(REPO_URI)' 2>/dev/null | sort -u) http://deb.debian.org/debian/; do
        if curl -fsS --max-time 20 -o /dev/null "${uri%/}/dists/trixie/Release" 2>/dev/null; then
            echo "${uri%/}"
            return 0
        fi
    done
    return 1
}

if [ ! -x "$ROOT/usr/bin/apt-get" ]; then
    MIRROR=$(mirror) || { echo "no package mirror with Debian trixie is reachable" >&2; exit 77; }
    if ! command -v debootstrap >/dev/null; then
        { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; } || exit 77
    fi
    rm -rf "$ROOT"
    mkdir -p "$ROOT"
    debootstrap --variant=minbase trixie "$ROOT" "$MIRROR" >"$ROOT.debootstrap.log" 2>&1 \
        || { tail -n 20 "$ROOT.debootstrap.log" >&2; rm -rf "$ROOT"; exit 77; }
fi

# shellcheck disable=SC1091
source "$(dirname "$0")/chroot.sh"
chroot_mount "$ROOT"
trap 'chroot_unmount "$ROOT"' EXIT
chroot "$ROOT" apt-get update -qq >"$ROOT.apt.log" 2>&1 || { tail -n 20 "$ROOT.apt.log" >&2; exit 77; }
DEBIAN_FRONTEND=noninteractive chroot "$ROOT" \
    apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >>"$ROOT.apt.log" 2>&1 \
    || { tail -n 20 "$ROOT.apt.log" >&2; exit 77; }
echo "${PACKAGES[*]}" >"$STAMP"
