"""Record what the hardening read prints on real hosts (the unit tests' input).

    python3 -m tests.data.hardening.record TARGETS_FILE TARGET HOST NAME

writes ``tests/data/hardening/NAME.gather.txt`` (the output of the one gathering script for
every shipped control) and ``NAME.facts.txt`` (the image facts script's output: the kernel
command line). Both come from the project's own transport, exactly as the suite reads them.
Password hashes never leave the host (the script reduces /etc/shadow on the host), so the
recordings hold no secrets; check anyway before committing one.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pytest_azlinux.facts import FACTS_SCRIPT
from pytest_azlinux.hardening import gather_script, load_controls
from pytest_azlinux.hardening.baseline import plan_for
from pytest_azlinux.host import Host
from pytest_azlinux.session import make_transport
from pytest_azlinux.targets import (
    LocalTarget,
    SshTarget,
    load_targets,
    local_host_specs,
    ssh_host_specs,
)

HERE = Path(__file__).parent


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__)
        return 2
    targets_file, target_name, host_name, name = argv
    target = load_targets(Path(targets_file)).get(target_name)
    if isinstance(target, SshTarget):
        specs = ssh_host_specs(target, target_name)
    elif isinstance(target, LocalTarget):
        specs = local_host_specs(target, target_name)
    else:
        print(f"target {target_name}: kind {target.kind} is not supported here")
        return 2
    spec = next((s for s in specs if s.name == host_name), None)
    if spec is None:
        print(f"no host {host_name} in target {target_name}: {', '.join(s.name for s in specs)}")
        return 2
    host = Host(spec, make_transport(spec), 120.0)
    host.transport.connect()
    try:
        gathered = host.run(gather_script(plan_for(load_controls())), sudo=True)
        facts = host.run(FACTS_SCRIPT, sudo=False)
    finally:
        host.close()
    (HERE / f"{name}.gather.txt").write_text(gathered.stdout)
    (HERE / f"{name}.facts.txt").write_text(facts.stdout)
    size = len(gathered.stdout)
    print(f"{name}: {size} bytes gathered in {gathered.duration:.2f} s (rc {gathered.rc})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
