"""The real nodes' container images, built here from Debian packages (no registry).

One image serves every pod the plugin makes on a real node (the debug pod, the escape
probe's profile pods, iperf3 pods): busybox-static with its applets linked into /bin (sh,
sleep, nsenter, ...) and iperf3 with the libraries it links. The sandbox ("pause") image is
the same content with a different command. Both are written into one OCI image-layout
archive that ``ctr -n k8s.io images import`` takes; pods use them with the default pull policy of a
non-``latest`` tag (IfNotPresent), so nothing is ever pulled.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from ...errors import BedError

POD_IMAGE = "azl.local/lab/busybox:1"
PAUSE_IMAGE = "azl.local/lab/pause:1"
BUSYBOX = Path("/bin/busybox")
IPERF3 = Path("/usr/bin/iperf3")
# pause: wait for a signal, exit on TERM (a sandbox holds namespaces; it runs nothing)
PAUSE_COMMAND = ["/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait; done"]


@dataclass(frozen=True)
class ImageArchive:
    names: tuple[str, ...]
    path: Path


def _is_static(path: Path) -> bool:
    out = subprocess.run(["ldd", str(path)], capture_output=True, text=True)
    return out.returncode != 0 or "not a dynamic executable" in out.stdout + out.stderr


def _libraries(path: Path) -> list[Path]:
    """The shared objects ``path`` loads (ldd), the dynamic loader included."""
    out = subprocess.run(["ldd", str(path)], capture_output=True, text=True, check=False)
    libs = []
    for line in out.stdout.splitlines():
        parts = line.split()
        candidates = [p for p in parts if p.startswith("/")]
        if candidates:
            libs.append(Path(candidates[0]))
    return libs


def _layer(files: dict[str, Path], links: dict[str, str], dirs: tuple[str, ...]) -> bytes:
    """An uncompressed tar layer: ``files`` (path in image -> file here), symlinks, dirs.
    Entries are sorted and times fixed, so the same inputs give the same digest."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def add_dir(name: str, mode: int = 0o755) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, mode, 0
            tar.addfile(info)

        parents = {str(Path(p).parent) for p in [*files, *links]} - {"."}
        for d in sorted({*dirs, *parents, *(str(a) for p in parents for a in Path(p).parents)}
                        - {"."}):
            add_dir(d, 0o1777 if d == "tmp" else 0o755)
        for name in sorted(files):
            data = files[name].read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o755, 0
            tar.addfile(info, io.BytesIO(data))
        for name in sorted(links):
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.mtime = tarfile.SYMTYPE, links[name], 0
            tar.addfile(info)
    return buf.getvalue()


def _pod_layer() -> bytes:
    for tool, package in ((BUSYBOX, "busybox-static"), (IPERF3, "iperf3")):
        if not tool.is_file():
            raise BedError(f"real nodes: {tool} missing (apt-get install {package})")
    if not _is_static(BUSYBOX):
        raise BedError(f"real nodes: {BUSYBOX} is not static (apt-get install busybox-static)")
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    files = {"bin/busybox": BUSYBOX, "usr/bin/iperf3": IPERF3}
    links = {f"bin/{a}": "busybox" for a in applets if a != "busybox"}
    for lib in _libraries(IPERF3):  # the file itself, and the name iperf3 asks for
        real = lib.resolve()
        files[str(real).lstrip("/")] = real
        if real != lib:
            links[str(lib).lstrip("/")] = str(real)
    return _layer(files, links, ("tmp", "etc", "proc", "sys", "dev", "root"))


def _blob(root: Path, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = root / "blobs" / "sha256" / digest.split(":", 1)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest


def write_archive(path: Path, images: list[tuple[str, list[str]]], layer: bytes) -> Path:
    """An OCI image-layout tar of ``images`` (name, command) sharing one layer; each is named
    for ctr (``io.containerd.image.name``), so one ``ctr images import`` brings them all."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="azl-image-") as tmp:
        root = Path(tmp)
        layer_digest = _blob(root, layer)
        manifests = []
        for name, command in images:
            config = {
                "architecture": "amd64", "os": "linux",
                "config": {"Cmd": command, "Env": ["PATH=/bin:/usr/bin:/sbin:/usr/sbin"]},
                "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
            }
            config_bytes = json.dumps(config, sort_keys=True).encode()
            manifest = {
                "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": _blob(root, config_bytes), "size": len(config_bytes)},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                            "digest": layer_digest, "size": len(layer)}],
            }
            manifest_bytes = json.dumps(manifest, sort_keys=True).encode()
            manifests.append({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": _blob(root, manifest_bytes), "size": len(manifest_bytes),
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {"io.containerd.image.name": name,
                                "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]},
            })
        (root / "index.json").write_text(json.dumps({"schemaVersion": 2,
                                                     "manifests": manifests}))
        (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        tmp_out = path.with_name(f".{path.name}.{os.getpid()}")  # labs may write at once
        with tarfile.open(tmp_out, "w") as tar:
            for entry in sorted(root.rglob("*")):
                info = tar.gettarinfo(str(entry), arcname=str(entry.relative_to(root)))
                info.mtime = 0  # reproducible: the node kit is cached by content
                if info.isfile():
                    with entry.open("rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)
        os.replace(tmp_out, path)
    return path


def write_node_images(directory: Path) -> ImageArchive:
    """The pod image and the sandbox image, in one OCI archive under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    images = [(POD_IMAGE, ["sleep", "86400"]), (PAUSE_IMAGE, PAUSE_COMMAND)]
    path = write_archive(directory / "images.tar", images, _pod_layer())
    for old in directory.glob("*.tar"):  # archives of an earlier layout
        if old != path:
            old.unlink()
    return ImageArchive(tuple(name for name, _ in images), path)
