"""The cloud-init NoCloud seed of one instance: an ISO 9660 (or vfat) volume labelled cidata.

cloud-init reads ``meta-data``, ``user-data`` and ``network-config`` from it on first boot:
the user (with the run's fresh public key and passwordless sudo), the SSH host key (made
here, so the connection is strict from the first byte: we write known_hosts), and a static
address on the run's bridge with no gateway (nothing routes off it).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..errors import ImageBootError

SEED_USER = "azureuser"  # as Azure provisions it


@dataclass(frozen=True)
class SeedSpec:
    """What goes into one instance's seed."""

    instance_id: str
    hostname: str
    authorized_key: str  # the run's client public key
    host_key_private: str  # OpenSSH ed25519 private key (PEM text)
    host_key_public: str
    mac: str
    address: str
    prefix: int
    user: str = SEED_USER  # the login user cloud-init makes


def user_data(spec: SeedSpec) -> str:
    doc = {
        "hostname": spec.hostname,
        "manage_etc_hosts": True,  # sudo resolves the host name (no DNS on the bridge)
        "users": [{
            "name": spec.user, "shell": "/bin/bash", "lock_passwd": True,
            "sudo": "ALL=(ALL) NOPASSWD:ALL", "ssh_authorized_keys": [spec.authorized_key],
        }],
        "disable_root": True,
        "ssh_pwauth": False,
        "ssh_deletekeys": True,
        "ssh_genkeytypes": ["ed25519"],  # only what is missing: the pinned key is not
        "ssh_keys": {
            "ed25519_private": spec.host_key_private,
            "ed25519_public": spec.host_key_public,
        },
    }  # fmt: skip
    return "#cloud-config\n" + yaml.safe_dump(doc, sort_keys=False)


def meta_data(spec: SeedSpec) -> str:
    return yaml.safe_dump({"instance-id": spec.instance_id, "local-hostname": spec.hostname})


def network_config(spec: SeedSpec) -> str:
    doc = {
        "version": 2,
        "ethernets": {
            "lab0": {
                "match": {"macaddress": spec.mac},
                "addresses": [f"{spec.address}/{spec.prefix}"],
                "dhcp4": False,
                "dhcp6": False,
            }
        },
    }
    return yaml.safe_dump(doc, sort_keys=False)


def write_seed(spec: SeedSpec, out: Path) -> Path:
    """Write the seed volume at ``out`` (genisoimage, else mkfs.vfat + mcopy)."""
    files = {
        "meta-data": meta_data(spec),
        "user-data": user_data(spec),
        "network-config": network_config(spec),
    }
    with tempfile.TemporaryDirectory(prefix="azl-seed-") as tmp:
        for name, text in files.items():
            (Path(tmp) / name).write_text(text)
        paths = [str(Path(tmp) / n) for n in files]
        if shutil.which("genisoimage"):
            cmd = [["genisoimage", "-quiet", "-output", str(out), "-volid", "cidata",
                    "-joliet", "-rock", *paths]]  # fmt: skip
        elif shutil.which("mkfs.vfat") and shutil.which("mcopy"):
            out.unlink(missing_ok=True)
            cmd = [["mkfs.vfat", "-n", "CIDATA", "-C", str(out), "2048"],
                   ["mcopy", "-oi", str(out), *paths, "::"]]  # fmt: skip
        else:
            raise ImageBootError(
                spec.hostname, spec.address,
                "cannot write the cloud-init seed: install genisoimage (or dosfstools and "
                "mtools)",
            )
        for step in cmd:
            res = subprocess.run(step, capture_output=True, text=True, check=False)
            if res.returncode != 0:
                raise ImageBootError(
                    spec.hostname, spec.address,
                    f"cannot write the cloud-init seed: {step[0]}: {res.stderr.strip()}",
                )
    return out
