"""Whether a process still runs, for drive.py (inside Blender) and verdict.py (after it)."""


def running(pid: int | None) -> bool:
    """A live process (not a zombie) with this id."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, TypeError):
        return False
