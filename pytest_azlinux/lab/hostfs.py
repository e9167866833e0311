"""A lab host's private files: /etc overlay upper layer, /var/log, /home, /run, sshd config.

Everything lives in the host's directory; the host's mount namespace mounts it over the
machine's paths (see ``START_SCRIPT`` in hostproc.py), so the machine's own /etc is never
changed and hosts never see each other's files.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..vm.keys import ensure_ed25519
from .state import LabHost
from .variants import load_variant

USER = "azureuser"
_MACHINE_ETC = Path("/etc")


def free_uid() -> int:
    """A uid/gid for azureuser that the machine does not use (shared kernel, shared ids)."""
    used: set[int] = set()
    for name in ("passwd", "group"):
        for line in (_MACHINE_ETC / name).read_text().splitlines():
            parts = line.split(":")
            if len(parts) > 2 and parts[2].isdigit():
                used.add(int(parts[2]))
    uid = 1000
    while uid in used:
        uid += 1
    return uid


def _copy_with(src: str, dest: Path, extra: str) -> None:
    path = _MACHINE_ETC / src
    text = path.read_text() if path.exists() else ""
    lines = [ln for ln in text.splitlines() if not ln.startswith(f"{USER}:")]
    dest.write_text("\n".join([*lines, extra]) + "\n")
    if path.exists():
        st = path.stat()
        os.chown(dest, st.st_uid, st.st_gid)
        os.chmod(dest, st.st_mode & 0o7777)


def _mkdir(path: Path, mode: int, uid: int = 0, gid: int = 0) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, uid, gid)
    os.chmod(path, mode)


def prepare_host_files(host: LabHost, uid: int, client_pub: str) -> str:
    """Create the host's private tree; return its sshd host public key line."""
    d = host.path
    _mkdir(d, 0o755)
    upper = d / "etc-upper"
    for sub, mode in (("etc-work", 0o700), ("log", 0o755), ("log/audit", 0o700),
                      ("tmp", 0o1777), ("vartmp", 0o1777), ("home", 0o755),
                      ("run", 0o755), ("run/sshd", 0o755), ("etc-upper", 0o755),
                      ("etc-upper/sudoers.d", 0o750), ("etc-upper/ssh", 0o755)):
        _mkdir(d / sub, mode)
    _mkdir(d / "home" / USER, 0o700, uid, uid)
    _mkdir(d / "home" / USER / ".ssh", 0o700, uid, uid)
    auth = d / "home" / USER / ".ssh" / "authorized_keys"
    auth.write_text(client_pub + "\n")
    os.chown(auth, uid, uid)
    os.chmod(auth, 0o600)

    passwd = f"{USER}:x:{uid}:{uid}:Azure user:/home/{USER}:/bin/bash"
    _copy_with("passwd", upper / "passwd", passwd)
    # '*' (not '!'): no password, but the account is not locked, so key login works
    _copy_with("shadow", upper / "shadow", f"{USER}:*:19000:0:99999:7:::")
    _copy_with("group", upper / "group", f"{USER}:x:{uid}:")
    _copy_with("gshadow", upper / "gshadow", f"{USER}:!::")
    sudoers = upper / "sudoers.d" / USER
    sudoers.write_text(f"{USER} ALL=(ALL) NOPASSWD:ALL\n")  # as on Azure VMs (waagent)
    os.chmod(sudoers, 0o440)
    (upper / "hostname").write_text(host.name + "\n")
    (upper / "hosts").write_text(
        f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n{host.address}\t{host.name}\n"
    )
    for target, text in load_variant(host.variant).files.items():
        dest = upper / Path(target).name
        if dest.is_symlink():
            dest.unlink()
        dest.write_text(text)
        os.chmod(dest, 0o644)

    host_pub = ensure_ed25519(upper / "ssh" / "azl_host_ed25519_key", f"root@{host.name}")
    sftp = next((p for p in ("/usr/lib/openssh/sftp-server", "/usr/libexec/sftp-server")
                 if os.path.exists(p)), None)
    (upper / "ssh" / "azl_sshd_config").write_text(
        "\n".join(
            [
                f"ListenAddress {host.address}",
                "Port 22",
                "HostKey /etc/ssh/azl_host_ed25519_key",
                "PidFile /run/sshd.pid",
                "AuthorizedKeysFile .ssh/authorized_keys",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin no",
                f"AllowUsers {USER}",
                "UsePAM no",
                "PrintMotd no",
                "MaxStartups 200:30:400",
                "MaxSessions 64",
                "ClientAliveInterval 30",
                *([f"Subsystem sftp {sftp}"] if sftp else []),
                "",
            ]
        )
    )
    return host_pub


def seed_file(host: LabHost, inside: str, source: Path, mode: int = 0o600) -> Path:
    """Copy ``source`` to ``inside`` (a path under /var/log of the host)."""
    if not inside.startswith("/var/log/"):
        raise ValueError(f"only /var/log paths are private per host, not {inside}")
    dest = host.path / "log" / inside.removeprefix("/var/log/")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, dest)
    os.chmod(dest, mode)
    return dest
