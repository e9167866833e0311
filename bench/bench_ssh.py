"""Per-command cost over SSH: our persistent shell against the bare floor, same sshd, same run.

Starts one real OpenSSH sshd on 127.0.0.1 (a non-root test user, key auth) and times N
``true`` commands four ways, interleaved in rounds so drift on a shared machine hits all:

- ``ours``: ``Host.run("true")`` (persistent shell: framing, reader, locks, files per command;
  a simple command runs in the shell itself, without a subshell);
- ``raw``: a bare paramiko channel running ``exec sh``, sending ``true; echo M`` and reading
  until ``M`` (issue 15's floor: a builtin in an open shell, no process started);
- ``raw+frame``: the same bare loop sending exactly our frame for ``true`` (subshell, output
  files, markers), so ``ours - raw+frame`` is the client side's own cost and
  ``raw+frame - raw`` what the remote side of the frame costs;
- ``channel``: a new session channel per command, as pytest-testinfra does;
- ``/bin/true``, ours and raw: the same for a program, which both must fork and exec.

The ways take turns command by command, so a shared machine's load hits each alike.
Goal (issue 15): ours <= 2 x raw. Exit code 0 when met, 1 otherwise.

    python bench/bench_ssh.py [--count 600]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import paramiko

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_azlinux.host import Host
from pytest_azlinux.transport.shell import _SETUP
from pytest_azlinux.transport.shell_scripts import frame as _frame
from pytest_azlinux.transport.ssh import SshTransport, no_delay
from tests.fixtures.sshd import SshdFactory, missing_requirements, provisioned_users

Way = Callable[[], None]


def ours(host: Host, command: str = "true") -> Way:
    host.run(command)  # connect and start the shell outside the measurement

    def once() -> None:
        assert host.run(command).rc == 0

    return once


def bare_shell(client: paramiko.SSHClient, frame_dir: str | None, command: str = "true") -> Way:
    """The bare loop; with ``frame_dir``, our frame with its files in a directory there."""
    transport = client.get_transport()
    assert transport is not None
    channel = transport.open_session()
    channel.exec_command("exec sh")
    frame = frame_dir is not None
    if frame_dir is not None:
        workdir = f"{frame_dir}/azl-bench-{os.getpid()}"
        channel.sendall(f"mkdir -p {workdir}\n{_SETUP.format(dir=workdir)}".encode())
    token = "AZLBENCHTOKEN0000"
    sent = (_frame(command, token, None) if frame else f"{command}; echo {token} E $?\n").encode()
    end = f"{token} E 0\n".encode()

    def once() -> None:
        channel.sendall(sent)
        buf = b""
        while not buf.endswith(end):
            buf += channel.recv(65536)

    return once


def channel_per_command(client: paramiko.SSHClient) -> Way:
    transport = client.get_transport()
    assert transport is not None

    def once() -> None:
        channel = transport.open_session()
        channel.exec_command("true")
        assert channel.recv_exit_status() == 0
        channel.close()

    return once


def ms(samples: list[float]) -> str:
    stalls = sum(1 for s in samples if s >= 0.030)
    return (f"median {statistics.median(samples) * 1000:7.3f} ms  "
            f"p90 {statistics.quantiles(samples, n=10)[-1] * 1000:7.3f} ms  "
            f">=30 ms: {stalls}")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=600, help="commands per way")
    args = parser.parse_args()
    why = missing_requirements()
    if why:
        print(f"bench_ssh: {why}", file=sys.stderr)
        return 2
    samples: dict[str, list[float]] = {}
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
                bare_transport = client.get_transport()
                assert bare_transport is not None
                no_delay(bare_transport.sock)  # the floor without Nagle stalls, as ours
                try:
                    ways = {"ours (Host.run)": ours(host)}
                    workdir = host.transport._shells[False].workdir  # type: ignore[attr-defined]
                    ways |= {
                        "raw (exec sh, echo marker)": bare_shell(client, None),
                        "raw+frame (bare loop, our frame)":
                            bare_shell(client, str(Path(workdir).parent)),
                        "channel per command (testinfra)": channel_per_command(client),
                        "ours, a program (/bin/true)": ours(host, "/bin/true"),
                        "raw, a program (/bin/true)": bare_shell(client, None, "/bin/true"),
                    }
                    for name in ways:
                        samples[name] = []
                    for _ in range(args.count):
                        for name, once in ways.items():
                            start = time.perf_counter()
                            once()
                            samples[name].append(time.perf_counter() - start)
                finally:
                    client.close()
                    host.close()
            finally:
                factory.stop_all()
    median = {name: statistics.median(s) for name, s in samples.items()}
    ours_s, raw_s = median["ours (Host.run)"], median["raw (exec sh, echo marker)"]
    framed_s = median["raw+frame (bare loop, our frame)"]
    channel_s = median["channel per command (testinfra)"]
    print(f"sshd {server.address}:{server.port}, user {users.user}, "
          f"{args.count} x 'true' each way, load {os.getloadavg()[0]:.2f}")
    for name, s in samples.items():
        print(f"  {name:34s} {ms(s)}")
    ratio = ours_s / raw_s
    print(f"ours / raw          {ratio:6.2f}   (goal <= 2: {'met' if ratio <= 2 else 'NOT met'})")
    print(f"ours / raw+frame    {ours_s / framed_s:6.2f}   (client side: "
          f"{(ours_s - framed_s) * 1000:.3f} ms a command)")
    print(f"raw+frame / raw     {framed_s / raw_s:6.2f}   (remote side of the frame: "
          f"{(framed_s - raw_s) * 1000:.3f} ms a command)")
    print(f"ours / channel      {ours_s / channel_s:6.3f}")
    program = median["ours, a program (/bin/true)"] / median["raw, a program (/bin/true)"]
    print(f"ours / raw, /bin/true {program:4.2f}   (a program: fork and exec on both sides)")
    return 0 if ratio <= 2 else 1


if __name__ == "__main__":
    raise SystemExit(main())
