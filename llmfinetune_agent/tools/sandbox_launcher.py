"""Confines the process, then becomes `python -I main.py`: the `python` tool's sandbox.

Run by `python_sandbox.run_python` as `python -I -S sandbox_launcher.py '<json>'` in a fresh
temporary directory with an empty environment. Standard library only (it runs before anything
is confined, so it imports nothing of the project). In order:

1. New network and PID namespaces (`unshare`; as root directly, otherwise inside a new user
   namespace when the kernel allows one): no interface but a down loopback, and every process
   of the sandbox dies with it.
2. A child process (the namespaces' first process) sets the resource limits (CPU seconds,
   address space, processes, file size, no core files), drops to the unprivileged user when
   running as root, forbids new privileges, and then
3. Landlock (Linux >= 5.13): files may be read and executed only under the Python installation
   and the system's program folders, written only in the temporary directory; no TCP bind or
   connect; no signals or abstract sockets outside the sandbox (as far as the kernel's
   Landlock version goes);
4. seccomp: `socket()` and `io_uring_setup()` fail with EACCES, so no socket of any family
   (a Unix socket path such as a database's is not reached through a network namespace);
5. `execve` of the interpreter in isolated mode (`-I`) with an empty environment.

It prints one line `SANDBOX {...}` on stderr saying which isolation took effect, before the
program's own output; a step the kernel refuses is reported there, never silently skipped.
"""

import ctypes
import json
import os
import platform
import resource
import struct
import sys

CLONE_NEWUSER, CLONE_NEWNET, CLONE_NEWPID = 0x10000000, 0x40000000, 0x20000000
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
# Landlock access rights (include/uapi/linux/landlock.h), by the ABI version that added them.
FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FS_ABI1 = (1 << 13) - 1  # execute .. make_sym
FS_REFER, FS_TRUNCATE, FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1
FILE_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV
SYSCALLS = {  # landlock_create_ruleset, landlock_add_rule, landlock_restrict_self, socket, io_uring_setup
    "x86_64": {"create": 444, "add": 445, "restrict": 446, "socket": 41, "io_uring": 425},
    "aarch64": {"create": 444, "add": 445, "restrict": 446, "socket": 198, "io_uring": 425},
}
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
EACCES = 13

libc = ctypes.CDLL(None, use_errno=True)


def _error() -> str:
    return os.strerror(ctypes.get_errno())


def enter_namespaces() -> str:
    """New network + PID namespaces; returns how (or why not)."""
    if os.geteuid() == 0 and libc.unshare(CLONE_NEWNET | CLONE_NEWPID) == 0:
        return "namespace"
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWPID) == 0:
        return "user-namespace"
    return f"none ({_error()})"


def set_limits(limits: dict) -> None:
    """Resource limits of the program and of every process it starts."""
    pairs = {
        resource.RLIMIT_CPU: limits["cpu_seconds"],
        resource.RLIMIT_AS: limits["memory_bytes"],
        resource.RLIMIT_NPROC: limits["processes"],
        resource.RLIMIT_FSIZE: limits["file_bytes"],
        resource.RLIMIT_CORE: 0,
        resource.RLIMIT_NOFILE: 256,
    }
    for which, value in pairs.items():
        resource.setrlimit(which, (value, value))


def drop_privileges(uid: int, gid: int) -> str:
    """Become the unprivileged user when started as root (processes then count against it)."""
    if os.geteuid() != 0 or uid < 0:
        return f"uid {os.geteuid()}"
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    return f"uid {uid}"


def landlock_abi(calls: dict) -> int:
    """The kernel's Landlock ABI version (0: none)."""
    version = libc.syscall(calls["create"], None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return max(version, 0)


def landlock(calls: dict, workdir: str, readable: list, abi: int) -> str:
    """Restrict file access to `readable` (read, execute) and `workdir` (everything), TCP, and
    signals, as far as Landlock version `abi` allows."""
    if abi < 1:
        return "none (no Landlock in this kernel)"
    fs = FS_ABI1 | (FS_REFER if abi >= 2 else 0) | (FS_TRUNCATE if abi >= 3 else 0)
    fs |= FS_IOCTL_DEV if abi >= 5 else 0
    net = NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 else 0
    scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0
    fields = [fs] + ([net] if abi >= 4 else []) + ([scoped] if abi >= 6 else [])
    attr = struct.pack(f"{len(fields)}Q", *fields)
    ruleset = libc.syscall(calls["create"], attr, ctypes.c_size_t(len(attr)), ctypes.c_uint32(0))
    if ruleset < 0:
        return f"none (landlock_create_ruleset: {_error()})"
    try:
        for path in readable:
            _allow(calls, ruleset, path, FS_EXECUTE | FS_READ_FILE | FS_READ_DIR, fs)
        _allow(calls, ruleset, "/dev/null", FS_READ_FILE | FS_WRITE_FILE | FS_TRUNCATE, fs)
        for device in ("/dev/zero", "/dev/urandom", "/dev/random"):
            _allow(calls, ruleset, device, FS_READ_FILE, fs)
        _allow(calls, ruleset, workdir, fs, fs)
        if libc.syscall(calls["restrict"], ruleset, ctypes.c_uint32(0)) != 0:
            return f"none (landlock_restrict_self: {_error()})"
    finally:
        os.close(ruleset)
    return f"landlock v{abi}"


def _allow(calls: dict, ruleset: int, path: str, rights: int, handled: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # a folder this system does not have
    try:
        if not os.path.isdir(path):
            rights &= FILE_RIGHTS
        attr = struct.pack("=Qi", rights & handled, fd)  # landlock_path_beneath_attr is packed
        if libc.syscall(calls["add"], ruleset, ctypes.c_int(1), attr, ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), f"landlock_add_rule {path}: {_error()}")
    finally:
        os.close(fd)


def refuse_sockets(calls: dict, arch: str) -> str:
    """A seccomp filter: socket() and io_uring_setup() fail with EACCES, all else is allowed."""
    ld_abs, jeq, ret = 0x20, 0x15, 0x06
    allow, deny = 0x7FFF0000, 0x00050000 | EACCES  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO
    program = [
        (ld_abs, 0, 0, 4),  # seccomp_data.arch
        (jeq, 1, 0, AUDIT_ARCH[arch]),
        (ret, 0, 0, allow),  # another ABI (e.g. x32): not filtered here, see below
        (ld_abs, 0, 0, 0),  # seccomp_data.nr
        (jeq, 0, 1, calls["socket"]),
        (ret, 0, 0, deny),
        (jeq, 0, 1, calls["io_uring"]),
        (ret, 0, 0, deny),
        (0x35, 0, 1, 0x40000000),  # jge: x32 syscall numbers on x86_64
        (ret, 0, 0, deny),
        (ret, 0, 0, allow),
    ]
    filters = b"".join(struct.pack("HBBI", *instruction) for instruction in program)
    buffer = ctypes.create_string_buffer(filters)
    fprog = struct.pack("HxxxxxxP", len(program), ctypes.addressof(buffer))
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.c_char_p(fprog), 0, 0) != 0:
        return f"none (seccomp: {_error()})"
    return "seccomp"


def confine_and_exec(config: dict, network: str) -> None:
    """In the namespaces' first process: limits, user, Landlock, seccomp, then the program."""
    arch = platform.machine()
    calls = SYSCALLS.get(arch)
    set_limits(config["limits"])
    user = drop_privileges(config["uid"], config["gid"])
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    files = (
        landlock(calls, config["workdir"], config["readable"], landlock_abi(calls))
        if calls
        else "none (unknown architecture)"
    )
    sockets = refuse_sockets(calls, arch) if calls else "none (unknown architecture)"
    report = {"network": network, "user": user, "files": files, "sockets": sockets}
    sys.stderr.write("SANDBOX " + json.dumps(report) + "\n")
    sys.stderr.flush()
    os.execve(config["python"], [config["python"], "-I", config["script"]], {})


def main() -> None:
    config = json.loads(sys.argv[1])
    network = enter_namespaces()
    child = os.fork()
    if child == 0:
        try:
            confine_and_exec(config, network)
        except BaseException as exc:  # never fall through to the parent's code
            sys.stderr.write(f"SANDBOX-ERROR {type(exc).__name__}: {exc}\n")
            os._exit(126)
    _, status = os.waitpid(child, 0)
    if os.WIFSIGNALED(status):
        os._exit(128 + os.WTERMSIG(status))
    os._exit(os.WEXITSTATUS(status))


if __name__ == "__main__":
    main()
