"""Per-command cost over SSH: our persistent shell vs a channel per command.

Starts one real OpenSSH sshd on 127.0.0.1 (a non-root test user, key auth), then runs N
``true`` commands through ``Host.run`` (one long-lived remote shell) and N through a paramiko
client that opens a new session channel per command, as pytest-testinfra does
(``get_transport().open_session(); exec_command(); recv_exit_status()``). Prints both
medians and their ratio. Needs root (it creates the test users; see tests/fixtures/sshd.py).

    python bench/bench_ssh.py [--count 500]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import paramiko

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_azlinux.host import Host
from pytest_azlinux.transport.ssh import SshTransport
from tests.fixtures.sshd import SshdFactory, missing_requirements, provisioned_users


def time_ours(host: Host, count: int) -> list[float]:
    host.run("true")  # connect and open the shell outside the measurement
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        result = host.run("true")
        samples.append(time.perf_counter() - start)
        assert result.rc == 0
    return samples


def time_channel_per_command(client: paramiko.SSHClient, count: int) -> list[float]:
    transport = client.get_transport()
    assert transport is not None
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        channel = transport.open_session()
        channel.exec_command("true")
        rc = channel.recv_exit_status()
        channel.close()
        samples.append(time.perf_counter() - start)
        assert rc == 0
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    args = parser.parse_args()
    why = missing_requirements()
    if why:
        print(f"bench_ssh: {why}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="azl-bench-") as tmp:
        work = Path(tmp)
        (work / "client").mkdir(mode=0o700)
        (work / "servers").mkdir(mode=0o700)
        with provisioned_users(work / "client") as users:
            factory = SshdFactory(work / "servers", users)
            try:
                server = factory.start("bench")
                spec = factory.spec(server)
                host = Host(spec, SshTransport(spec))
                client = paramiko.SSHClient()
                client.load_host_keys(str(factory.known_hosts))
                client.set_missing_host_key_policy(paramiko.RejectPolicy())
                client.connect(server.address, port=server.port, username=users.user,
                               key_filename=users.identity_file, look_for_keys=False,
                               allow_agent=False)
                try:
                    # Interleave the two in halves so drift on a shared machine hits both.
                    half = args.count // 2
                    ours = time_ours(host, half)
                    theirs = time_channel_per_command(client, half)
                    ours += time_ours(host, args.count - half)
                    theirs += time_channel_per_command(client, args.count - half)
                finally:
                    client.close()
                    host.close()
            finally:
                factory.stop_all()
    ours_ms = statistics.median(ours) * 1000
    theirs_ms = statistics.median(theirs) * 1000
    ratio = ours_ms / theirs_ms
    print(f"sshd {server.address}:{server.port}, user {users.user}, {args.count} x 'true' each")
    print(f"persistent shell (Host.run):      median {ours_ms:7.3f} ms  "
          f"p90 {statistics.quantiles(ours, n=10)[-1] * 1000:7.3f} ms")
    print(f"channel per command (testinfra):  median {theirs_ms:7.3f} ms  "
          f"p90 {statistics.quantiles(theirs, n=10)[-1] * 1000:7.3f} ms")
    print(f"ratio ours/theirs: {ratio:.4f} (1/{1 / ratio:.0f}); target <= 0.1: "
          f"{'met' if ratio <= 0.1 else 'NOT met'}")
    return 0 if ratio <= 0.1 else 1


if __name__ == "__main__":
    raise SystemExit(main())
