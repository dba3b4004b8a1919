# Mount helpers for running programs inside the e2e root; sourced, not run.

chroot_mount() {
    local root=$1
    mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
    mountpoint -q "$root/dev" || mount --rbind /dev "$root/dev"
    mountpoint -q "$root/sys" || mount --rbind /sys "$root/sys"
}

chroot_unmount() {
    local root=$1 point
    for point in proc dev sys; do
        mountpoint -q "$root/$point" && umount -R -l "$root/$point"
    done
    return 0
}
