"""The parts of a real test-bed node made on this machine: images, certificates, configs.

The node itself (VM, containerd, kubelet) is exercised in tests/integration/test_real_nodes.py;
these check what is handed to it, with this machine's real busybox-static and iperf3.
"""

from __future__ import annotations

import base64
import io
import ipaddress
import json
import tarfile
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pytest_azlinux.lab.bed.manifests import NodeImage
from pytest_azlinux.lab.bed.node_images import PAUSE_IMAGE, POD_IMAGE, write_node_images
from pytest_azlinux.lab.bed.pki import node_certificate, write_pki
from pytest_azlinux.lab.bed.real_nodes import (
    RealNode,
    cni_config,
    kubelet_config,
    node_labels,
    pod_cidr,
    provision_script,
)


def _archive(path: Path) -> tuple[dict[str, object], dict[str, bytes]]:
    with tarfile.open(path) as tar:
        blobs = {m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
                 for m in tar.getmembers() if m.isfile()}
    return json.loads(blobs["index.json"]), blobs


def test_node_images_are_one_oci_archive_named_for_ctr(tmp_path: Path) -> None:
    archive = write_node_images(tmp_path)
    assert archive.names == (POD_IMAGE, PAUSE_IMAGE)
    index, blobs = _archive(archive.path)
    assert blobs["oci-layout"] == b'{"imageLayoutVersion":"1.0.0"}'
    entries = index["manifests"]  # type: ignore[index]
    assert [e["annotations"]["io.containerd.image.name"] for e in entries] == \
        [POD_IMAGE, PAUSE_IMAGE]
    commands = []
    for entry in entries:
        manifest = json.loads(blobs[f"blobs/sha256/{entry['digest'].split(':')[1]}"])
        layer_digest = manifest["layers"][0]["digest"]
        config = json.loads(blobs[f"blobs/sha256/{manifest['config']['digest'].split(':')[1]}"])
        assert config["rootfs"]["diff_ids"] == [layer_digest]  # uncompressed: digest = diff id
        commands.append(config["config"]["Cmd"])
    assert commands[0] == ["sleep", "86400"] and commands[1][0] == "/bin/sh"
    layer = blobs[f"blobs/sha256/{layer_digest.split(':')[1]}"]  # one layer, shared
    (tmp_path / "layer.tar").write_bytes(layer)
    with tarfile.open(tmp_path / "layer.tar") as tar:
        members = {m.name: m for m in tar.getmembers()}
    # what the plugin's pods run: sh, sleep, nsenter (busybox applets) and iperf3 with its
    # loader and libraries under the names it asks for
    for applet in ("bin/sh", "bin/sleep", "bin/nsenter", "bin/cat"):
        assert members[applet].issym() and members[applet].linkname == "busybox"
    assert members["bin/busybox"].isfile() and members["usr/bin/iperf3"].isfile()
    assert "lib64/ld-linux-x86-64.so.2" in members
    assert any(n.endswith("libiperf.so.0") for n in members)
    assert members["tmp"].mode == 0o1777


def test_node_images_are_reproducible(tmp_path: Path) -> None:
    # the node kit is cached by content: the same inputs must give the same bytes
    first = write_node_images(tmp_path / "a").path.read_bytes()
    second = write_node_images(tmp_path / "b").path.read_bytes()
    assert first == second


def test_node_certificate_is_a_kubelets_identity_signed_by_the_bed(tmp_path: Path) -> None:
    write_pki(tmp_path, addresses=("198.18.0.1",))
    cert_pem, key_pem = node_certificate(tmp_path, "aks-real-1", "198.18.0.207")
    cert = x509.load_pem_x509_certificate(cert_pem)
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.crt").read_bytes())
    cert.verify_directly_issued_by(ca)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == \
        "system:node:aks-real-1"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == \
        "system:nodes"
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("198.18.0.207") in sans.get_values_for_type(x509.IPAddress)
    assert b"PRIVATE KEY" in key_pem and (tmp_path / "ca.key").stat().st_mode & 0o077 == 0
    # the API server's certificate covers the bridge address the nodes use
    admin = x509.load_pem_x509_certificate((tmp_path / "admin.crt").read_bytes())
    admin_sans = admin.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("198.18.0.1") in admin_sans.get_values_for_type(x509.IPAddress)
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)


def test_each_node_gets_its_own_pod_cidr_and_routes_to_the_others() -> None:
    assert [pod_cidr(i) for i in range(3)] == ["10.244.1.0/24", "10.244.2.0/24", "10.244.3.0/24"]
    conf = json.loads(cni_config("10.244.2.0/24"))
    bridge = conf["plugins"][0]
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.244.2.0/24", "gateway": "10.244.2.1"}]]
    nodes = [RealNode(f"n{i}", f"node{i + 1}", f"198.18.0.{207 + i}", pod_cidr(i))
             for i in range(3)]
    script = provision_script(nodes[1], [nodes[0], nodes[2]], "https://198.18.0.1:6443",
                              b"CA", b"CERT", b"KEY", node_labels("real", NodeImage()))
    assert "ip route replace 10.244.1.0/24 via 198.18.0.207" in script
    assert "ip route replace 10.244.3.0/24 via 198.18.0.209" in script
    assert "10.244.2.0/24 via" not in script  # no route to its own pods
    kubelet = next(line for line in script.splitlines() if "--unit=azl-kubelet" in line)
    assert "--hostname-override=n1" in kubelet and "--node-ip=198.18.0.208" in kubelet
    assert "kubernetes.azure.com/agentpool=real" in kubelet
    files = _written(script)
    assert files["var/lib/kubelet/pki/kubelet.key"] == (b"KEY", 0o600)
    assert files["var/lib/kubelet/pki/kubelet.crt"] == (b"CERT", 0o644)
    assert json.loads(files["etc/cni/net.d/10-azl-pods.conflist"][0])["plugins"][0]["ipam"][
        "ranges"] == [[{"subnet": "10.244.2.0/24", "gateway": "10.244.2.1"}]]


def _written(script: str) -> dict[str, tuple[bytes, int]]:
    """The files the provisioning script unpacks (a base64 tar in a here-document)."""
    body = script.split("<<'AZL_FILES'", 1)[1].split("\nAZL_FILES\n", 1)[0]
    data = base64.b64decode(body.split("\n", 1)[1])
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: (tar.extractfile(m).read(), m.mode)  # type: ignore[union-attr]
                for m in tar.getmembers()}


def test_kubelet_config_is_as_on_aks() -> None:
    config = yaml.safe_load(kubelet_config())
    assert config["cgroupDriver"] == "systemd"
    assert config["authentication"]["anonymous"]["enabled"] is False
    assert config["authorization"]["mode"] == "Webhook"
