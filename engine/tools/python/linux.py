"""The Linux sandbox: the interpreter process enters new user, mount, network, pid, IPC and UTS
namespaces before it runs any code the model wrote.

Inside, the network namespace has only its own loopback, down (nothing reaches the host or
beyond); every mount is read-only except the chat's work folder (at /mnt/data, where gpt-oss's
python description says files go), whose `documents` folder is read-only again; the places people
keep private files (/home, /root, /tmp, /run, ...) are empty tmpfs, with Python's own installation
put back where it lives there; /proc shows only the sandbox's processes; and no capability
survives. A sandbox started by root runs as `nobody`, so files only root may read stay unreadable.
Standard library only (ctypes for the system calls Python 3.11 lacks): the interpreter process
imports this without the engine package.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
from collections.abc import Sequence

from engine.tools.python.limits import NOBODY

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MOUNT_ATTR_RDONLY = 0x1
AT_FDCWD = -100
AT_RECURSIVE = 0x8000
SYS_MOUNT_SETATTR = 442  # the same number on x86_64 and arm64 (Linux 5.12+)
PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
_CAPABILITY_VERSION_3 = 0x20080522

# Where people and services keep what the sandbox must not read; each becomes an empty tmpfs.
HIDDEN = ("/home", "/root", "/tmp", "/var/tmp", "/run", "/var/run", "/media", "/srv", "/mnt")
SANDBOX_FOLDER = "/mnt/data"
FALLBACK_FOLDER = "/tmp/data"  # a system without /mnt: /tmp always exists

_libc = ctypes.CDLL(None, use_errno=True)


class SandboxSetupError(OSError):
    """A step of the sandbox failed; the message names the step."""


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _check(result: int, step: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise SandboxSetupError(errno, f"{step}: {os.strerror(errno)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    _check(
        _libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {target}",
    )


def _set_read_only(path: str, read_only: bool, *, recursive: bool) -> None:
    attr = _MountAttr(MOUNT_ATTR_RDONLY if read_only else 0, 0 if read_only else MOUNT_ATTR_RDONLY)
    flags = AT_RECURSIVE if recursive else 0
    result = _libc.syscall(
        SYS_MOUNT_SETATTR, AT_FDCWD, path.encode(), flags, ctypes.byref(attr), ctypes.sizeof(attr)
    )
    _check(result, f"make {path} {'read-only' if read_only else 'writable'}")


def enter(
    work: str,
    documents: str,
    hidden: Sequence[str] = (),
    readable: Sequence[str] = (),
    lifeline: int | None = None,
) -> str:
    """Moves this process into the sandbox and returns the work folder's path inside it.

    Forks once (a new pid namespace applies to children): the original process stays outside,
    forwards SIGINT, ends the sandbox when `lifeline` (a pipe the app holds open) reaches its
    end, and exits with the sandboxed process's status; only the sandboxed process returns.
    Must run while the process has a single thread.
    """
    as_root = os.geteuid() == 0
    writer = _start_map_writer() if as_root else None
    flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
    if _libc.unshare(flags) != 0:
        errno = ctypes.get_errno()
        if writer is not None:
            _finish_map_writer(*writer, go=False)
        step = "create the namespaces (unprivileged user namespaces)"
        raise SandboxSetupError(errno, f"{step}: {os.strerror(errno)}")
    if writer is not None:
        _finish_map_writer(*writer, go=True)
    else:  # an ordinary user may map only itself
        uid, gid = os.getuid(), os.getgid()
        for name, text in (
            ("setgroups", "deny"),
            ("uid_map", f"{uid} {uid} 1"),
            ("gid_map", f"{gid} {gid} 1"),
        ):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
    alive_read, alive_write = os.pipe()
    pid = os.fork()
    if pid:
        os.close(alive_read)
        _wait_outside(pid, lifeline)  # never returns
    os.close(alive_write)
    _die_with_parent(alive_read)
    folder = _mount_filesystem(work, documents, hidden, readable)
    _drop_capabilities(become_nobody=as_root)
    _die_with_parent(alive_read)  # becoming nobody cleared the death signal
    os.close(alive_read)
    return folder


def _die_with_parent(alive: int) -> None:
    """The app kills the process outside; the sandbox (its pid 1, so all of it) must follow."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if select.select([alive], [], [], 0)[0]:
        os._exit(1)  # the process outside ended before the death signal was armed


def _start_map_writer() -> tuple[int, int]:
    """Root's sandbox maps root (to set up the mounts: Python may live under /root) and nobody
    (to run as); only a process outside the new namespace may write such a map."""
    go_read, go_write = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.close(go_write)
            if os.read(go_read, 1):
                for name in ("uid_map", "gid_map"):
                    with open(f"/proc/{parent}/{name}", "w") as f:
                        f.write(f"0 0 1\n{NOBODY} {NOBODY} 1\n")
                status = 0
        finally:
            os._exit(status)
    os.close(go_read)
    return pid, go_write


def _finish_map_writer(pid: int, go_write: int, *, go: bool) -> None:
    if go:
        os.write(go_write, b"x")
    os.close(go_write)  # without a byte first, the writer ends without writing
    _, status = os.waitpid(pid, 0)
    if go and os.waitstatus_to_exitcode(status) != 0:
        raise SandboxSetupError(1, "write the user namespace's id maps")


def _wait_outside(pid: int, lifeline: int | None) -> None:
    """The process outside the sandbox: passes SIGINT on (cancel), kills the sandbox if the app
    has gone (however it ended), and ends with it."""
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)  # the app sees end-of-stream as soon as the sandboxed process ends
    signal.signal(signal.SIGINT, lambda _signum, _frame: os.kill(pid, signal.SIGINT))
    signal.signal(signal.SIGTERM, lambda _signum, _frame: os.kill(pid, signal.SIGKILL))
    watched = [os.pidfd_open(pid)]
    if lifeline is not None:
        watched.append(lifeline)
    if lifeline in select.select(watched, [], [])[0] and not os.read(lifeline, 1):
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    os._exit(code if code >= 0 else 128 - code)


def _mount_filesystem(
    work: str, documents: str, hidden: Sequence[str], readable: Sequence[str]
) -> str:
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing done here reaches the host
    try:
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    except SandboxSetupError:
        # A container that masks parts of /proc refuses a new one; hide the host's instead.
        _mount("tmpfs", "/proc", "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k,mode=555")
    hide = [p for p in (*HIDDEN, *hidden) if os.path.isdir(p) and not os.path.islink(p)]
    # Opened before anything is hidden, in this mount namespace: bind mounts are made from these.
    work_fd = os.open(work, os.O_PATH | os.O_DIRECTORY)
    documents_fd = os.open(documents, os.O_PATH | os.O_DIRECTORY)
    keep = [  # Python's own files, where they live in a hidden place (pyenv under /root)
        (path, os.open(path, os.O_PATH | os.O_DIRECTORY))
        for path in readable
        if os.path.isdir(path) and any(_inside(path, h) for h in hide)
    ]
    folder = sandbox_folder()
    parent = os.path.dirname(folder)
    for path in dict.fromkeys([parent, *hide]):
        _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=755")
    os.mkdir(folder)
    _mount(f"/proc/self/fd/{work_fd}", folder, None, MS_BIND)
    _mount(f"/proc/self/fd/{documents_fd}", f"{folder}/documents", None, MS_BIND)
    for path, fd in keep:
        os.makedirs(path, exist_ok=True)
        _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
    for fd in (work_fd, documents_fd, *(fd for _, fd in keep)):
        os.close(fd)
    _set_read_only("/", True, recursive=True)
    _set_read_only(folder, False, recursive=False)  # its documents mount stays read-only
    os.chdir(folder)
    return folder


def sandbox_folder() -> str:
    """Where the work folder appears inside the sandbox on this system."""
    return SANDBOX_FOLDER if os.path.isdir("/mnt") else FALLBACK_FOLDER


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _drop_capabilities(*, become_nobody: bool) -> None:
    """Root of the new user namespace could undo the mounts above; after this it cannot."""
    for cap in range(64):
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break  # past the last capability this kernel knows
    if become_nobody:  # from uid 0 to another: the kernel clears the capabilities itself
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    header = _CapHeader(_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(header), ctypes.byref(data)), "drop capabilities")
    # Root is mapped inside: no set-user-ID program may lead back to it.
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "forbid new privileges")


def kill_strays() -> None:
    """Ends every other process in the sandbox (a cell's background work, a fork bomb's
    survivors) and reaps them; only the sandbox's pid 1 may call this."""
    if os.getpid() != 1:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(-1, signal.SIGKILL)  # from pid 1 of a pid namespace: all of it but itself
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return
