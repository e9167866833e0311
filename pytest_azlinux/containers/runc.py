"""Run the escape probe in a runc container on a host, with a profile's real settings.

The bundle lives in a temp dir on the host (``/tmp/azl-escape-bundle.XXXXXX``): an empty
rootfs skeleton, the host's binaries bind-mounted read-only (oci.py), the probe at /azl and
one writable scratch dir at /tmp. Inside the container a runner lists the writable areas,
runs the probe, and lists them again; the host lists the scratch dir before and after too,
so a test can prove the probe changed nothing outside its private temp dir. The container
is deleted (``runc delete -f``) and the bundle removed afterwards, also after a failure or
Ctrl-C (try/finally plus the cleanup ledger, whose steps are idempotent).
"""

from __future__ import annotations

import json
import secrets
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..analyse.escape import Profile, Verdict, probe_script, verdict_for
from ..cleanup import CleanupLedger
from ..errors import InfraError
from ..host import Host
from .oci import HOST_BINARY_DIRS, PROBE_DIR, SCRATCH_DIR, HostLayout, Variation, build_config

BUNDLE_PARENT = "/tmp"
_KERNEL_FS = ("proc|sysfs|cgroup|cgroup2|devpts|mqueue|securityfs|debugfs|tracefs|bpf|pstore|"
              "configfs|fusectl|hugetlbfs|autofs|binfmt_misc|nsfs")
# Listing of a tree: directory names (their mtime changes when the probe's temp dir comes
# and goes, so it is left out), every other node with type/size/mtime/mode/owner, and the
# md5 of regular files.
_LIST_TREE = r"""
list_tree() {
    find "$1" -xdev -type d 2>/dev/null | sed 's/^/dir /'
    find "$1" -xdev ! -type d -exec stat -c 'node %n %F %s %Y %a %u:%g' {} + 2>/dev/null
    find "$1" -xdev -type f -size -1024k -exec md5sum {} + 2>/dev/null | sed 's/^/md5 /'
}
"""
RUNNER = _LIST_TREE + r"""
# inside the container: the writable areas, the probe, the writable areas again
snap() {
    awk '{ split($0, h, " - "); split(h[2], s, " ")
           if (("," $6 "," s[3] ",") ~ /,ro,/) next
           if (s[1] ~ /^(KERNEL_FS)$/) next
           print $5 }' /proc/self/mountinfo | sort -u | while read -r mp; do
        for skip in $AZL_SNAP_SKIP; do case $mp in "$skip" | "$skip"/*) continue 2 ;; esac; done
        list_tree "$mp"
    done | sort
}
echo '##azl:before'; snap
echo '##azl:probe'; "$@"; echo "##azl:probe-rc=$?"
echo '##azl:after'; snap
""".replace("KERNEL_FS", _KERNEL_FS)
_LAYOUT = r"""
uname -m; cat /proc/sys/kernel/cap_last_cap; command -v busybox || echo -
sed -n 's/^CapBnd:[[:space:]]*//p' /proc/self/status
for d in DIRS; do
    if [ -L "$d" ]; then echo "link $d $(readlink "$d")"; elif [ -d "$d" ]; then echo "dir $d"; fi
done
for n in pid ipc uts net; do echo "ns $(readlink /proc/self/ns/$n)"; done
""".replace("DIRS", " ".join(HOST_BINARY_DIRS))


@dataclass(frozen=True)
class ContainerRun:
    """What one container run produced."""

    host: str
    profile: Profile
    variation: Variation
    container_id: str
    probe_lines: tuple[str, ...]
    probe_rc: int | None
    inside_before: tuple[str, ...]
    inside_after: tuple[str, ...]
    host_before: tuple[str, ...]
    host_after: tuple[str, ...]
    runtime_version: str | None = None
    stderr: str = ""
    seconds: float = 0.0
    config: Mapping[str, object] = field(default_factory=dict)

    @property
    def verdict(self) -> Verdict:
        return verdict_for(self.probe_lines, self.profile, runtime_version=self.runtime_version)

    def changes(self) -> list[str]:
        """Entries that differ between the before and after listings (inside and host side)."""
        out = []
        for where, before, after in (("container", self.inside_before, self.inside_after),
                                     ("host", self.host_before, self.host_after)):
            b, a = set(before), set(after)
            out += [f"{where}: - {x}" for x in sorted(b - a)]
            out += [f"{where}: + {x}" for x in sorted(a - b)]
        return out


def _sections(stdout: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in stdout.splitlines():
        if line.startswith("##azl:"):
            key = line[len("##azl:"):]
            current = sections.setdefault(key.split("=", 1)[0], [])
            if "=" in key:
                current.append(key.split("=", 1)[1])
            continue
        if current is not None:
            current.append(line)
    return sections


class RuncProbe:
    """Starts probe containers with runc on one host (commands run with sudo)."""

    def __init__(
        self,
        host: Host,
        *,
        runc: str = "runc",
        runtime_version: str | None = None,
        ledger: CleanupLedger | None = None,
        timeout: float = 60.0,
        bundle_parent: str = BUNDLE_PARENT,
        script: str | None = None,
    ) -> None:
        self.host = host
        self.runc = runc
        self.runtime_version = runtime_version
        self.ledger = ledger
        self.timeout = timeout
        self.bundle_parent = bundle_parent
        self.script = script if script is not None else probe_script()  # a custom probe
        self._layout: tuple[HostLayout, str | None] | None = None

    def layout(self) -> tuple[HostLayout, str | None]:
        """The host's architecture, cap_last_cap, binary dirs and busybox (read once)."""
        if self._layout is None:
            out = self.host.run(_LAYOUT, sudo=True, check=True).stdout.splitlines()
            if len(out) < 4 or not out[1].strip().isdigit():
                raise InfraError(f"{self.host.name}: cannot read the host layout: {out[:3]}")
            dirs, links, namespaces = [], {}, []
            for line in out[4:]:
                kind, _, rest = line.partition(" ")
                if kind == "dir":
                    dirs.append(rest)
                elif kind == "link":
                    path, _, target = rest.partition(" ")
                    links[path] = target
                elif kind == "ns" and rest:
                    namespaces.append(rest)
            busybox = out[2].strip() if out[2].strip() != "-" else None
            self._layout = (
                HostLayout(out[0].strip(), int(out[1]), tuple(dirs), links,
                           int(out[3], 16) if out[3].strip() else None, tuple(namespaces)),
                busybox,
            )
        return self._layout

    def _run(self, cmd: str, *args: object, timeout: float | None = None) -> str:
        result = self.host.run(cmd, *args, sudo=True, timeout=timeout or self.timeout)
        if result.rc != 0:
            raise InfraError(f"{self.host.name}: {result.command} exited {result.rc}: "
                             f"{result.stderr.strip()[-300:]}")
        return result.stdout

    def _cleanup_steps(self, bundle: str, container_id: str | None) -> list[tuple[str, object]]:
        steps: list[tuple[str, object]] = [(
            f"remove bundle {bundle} on {self.host.name}",
            lambda: self.host.run("rm -rf --one-file-system -- %s 2>/dev/null || rm -rf -- %s",
                                  bundle, bundle, sudo=True, timeout=60),
        )]
        if container_id:
            steps.append((
                f"delete container {container_id} on {self.host.name}",
                lambda: self.host.run(f"{shlex.quote(self.runc)} delete -f", container_id,
                                      sudo=True, timeout=60),
            ))
        return steps

    def run(
        self,
        profile: Profile,
        variation: Variation | None = None,
        *,
        probe_args: Mapping[str, str] | None = None,
        netns_path: str | None = None,
    ) -> ContainerRun:
        """Start one container with ``profile`` (+ ``variation``), run the probe, clean up."""
        variation = variation or Variation()
        layout, busybox = self.layout()
        shell: Sequence[str] = (busybox, "sh") if busybox else ("/bin/sh",)
        bundle = self._run("mktemp -d %s", f"{self.bundle_parent}/azl-escape-bundle.XXXXXX").strip()
        container_id = f"azl-escape-{secrets.token_hex(4)}"
        steps = self._cleanup_steps(bundle, container_id)
        if self.ledger is not None:
            for description, undo in steps:
                self.ledger.add(description, undo)  # type: ignore[arg-type]
        try:
            return self._run_in_bundle(profile, variation, layout, shell, bundle, container_id,
                                       probe_args or {}, netns_path)
        finally:
            for _, undo in reversed(steps):
                undo()  # type: ignore[operator]

    def _run_in_bundle(
        self, profile: Profile, variation: Variation, layout: HostLayout, shell: Sequence[str],
        bundle: str, container_id: str, probe_args: Mapping[str, str], netns_path: str | None,
    ) -> ContainerRun:
        rootfs = f"{bundle}/rootfs"
        skeleton = ["proc", "sys", "dev", "tmp", "run", "etc", "var", "root", "azl", "host"]
        skeleton += [d.lstrip("/") for d in layout.binary_dirs]
        links = " ; ".join(f"ln -s {shlex.quote(t)} {shlex.quote(rootfs + p)}"
                           for p, t in layout.binary_links.items())
        dirs = " ".join(map(shlex.quote, skeleton))
        self._run(
            "chmod 755 %s && mkdir -p %s && cd %s && mkdir -p " + dirs
            + " && mkdir -m 755 %s && mkdir -m 1777 %s" + (f" && {links}" if links else ""),
            bundle, rootfs, rootfs, f"{bundle}/azl", f"{bundle}/tmp",
        )
        mount_allow = " ".join([*layout.binary_dirs, PROBE_DIR, SCRATCH_DIR])
        # the host's own namespaces: the initial ones on a VM, others on a nested host (a lab
        # host); the probe compares the container's against both
        defaults = {"mount_allow": mount_allow}
        if layout.namespaces:
            defaults["host_ns"] = " ".join(layout.namespaces)
        args = [f"{k}={v}" for k, v in {**defaults, **probe_args}.items()]
        config = build_config(
            profile, layout,
            [*shell, f"{PROBE_DIR}/run.sh", *shell, f"{PROBE_DIR}/escape.sh", *args],
            probe_dir=f"{bundle}/azl", scratch_dir=f"{bundle}/tmp", variation=variation,
            netns_path=netns_path,
            # host-shared areas of the privileged profile (host /dev, host /) change under
            # other processes: the no-change listing covers the container's own areas
            env={"AZL_SNAP_SKIP": "/dev /host" if profile == "privileged" else ""},
        )
        self.host.write(f"{bundle}/azl/escape.sh", self.script, mode=0o644, sudo=True)
        self.host.write(f"{bundle}/azl/run.sh", RUNNER, mode=0o644, sudo=True)
        self.host.write(f"{bundle}/config.json", json.dumps(config, indent=1), mode=0o644,
                        sudo=True)
        list_scratch = _LIST_TREE + f"list_tree {shlex.quote(bundle + '/tmp')} | sort"
        host_before = self._run(list_scratch)
        result = self.host.run(
            f"{shlex.quote(self.runc)} run --bundle %s %s </dev/null", bundle, container_id,
            sudo=True, timeout=self.timeout,
        )
        host_after = self._run(list_scratch)
        sections = _sections(result.stdout)
        if "probe" not in sections or "after" not in sections:
            hint = ("; the host has no cgroup filesystem mounted under /sys/fs/cgroup"
                    if "no cgroup mount found" in result.stderr else "")
            raise InfraError(
                f"{self.host.name}: the {profile} container ({variation.describe()}) did not "
                f"run the probe: runc exited {result.rc}: {result.stderr.strip()[-400:]}{hint}"
            )
        probe_rc = sections.get("probe-rc", ["?"])[0]
        return ContainerRun(
            host=self.host.name, profile=profile, variation=variation,
            container_id=container_id, probe_lines=tuple(sections["probe"]),
            probe_rc=int(probe_rc) if probe_rc.isdigit() else None,
            inside_before=tuple(sections.get("before", [])),
            inside_after=tuple(sections["after"]),
            host_before=tuple(host_before.splitlines()), host_after=tuple(host_after.splitlines()),
            runtime_version=self.runtime_version, stderr=result.stderr,
            seconds=result.duration, config=config,
        )
