"""One exception hierarchy users can catch; every error pytest-azlinux raises is in it.

::

    AzlError
    ├── ConfigError              the configuration is wrong: a usage error, exit 4, one line
    │   ├── TargetsError         targets file, a target, a field (names file/target/field)
    │   │   ├── SettingsError    a target's ``suites.<name>`` settings
    │   │   └── ProfileError     an image profile file, or a profile that cannot be found
    │   ├── ControlsError        a hardening controls file (names file, control, field)
    │   ├── WaiversError         the waivers file (names file, waiver and field)
    │   ├── RecordingError       a recorded image's file is malformed (names file and fault)
    │   └── ReportError          bad input to a report tool (a missing dir, not JUnit)
    ├── InfraError               the test could not look: reported as ERROR, never a finding
    │   ├── HostUnreachable      connect failed (network, auth): host, address, cause
    │   │   ├── HostKeyError     unknown or changed host key
    │   │   └── ImageBootError   an image file did not boot (unreadable, sshd never answered)
    │   ├── ConnectionLost       an established connection dropped
    │   ├── OutputLost           a command's output could not be captured on the host (ENOSPC)
    │   ├── CommandTimeout       a command was killed after its timeout; the host stays usable
    │   ├── ProbeUnavailable     the host cannot show what a check reads (no securityfs...)
    │   ├── PackageInventoryError the installed packages could not be read (no source...)
    │   │   └── ManifestError    an SPDX package manifest missing, malformed, cut, not SPDX
    │   ├── CollectorError       an SELinux record source could not be read
    │   ├── MeasurementError     a measurement could not be made (iperf3 missing, port blocked)
    │   ├── ProbeOutputError     a probe's output is not what it writes (crashed, cut short)
    │   ├── DeviceRefused        a scratch device may not be used (not named, mounted, held)
    │   ├── ClusterError         the Kubernetes API failed or a wait ran out
    │   │   ├── ApiError         the API answered an error status (status, message)
    │   │   │   └── PermissionDenied   RBAC refused a request: names verb, resource, namespace
    │   │   ├── CredentialPluginFailed the kubeconfig's exec plugin failed (command, stderr)
    │   │   ├── PodSecurityRejected
    │   │   └── WaitTimeout
    │   ├── CleanupFailed        an undo step failed: something may be left on a target
    │   └── LabError             the lab or its test bed could not be built, started, used
    │       ├── BedError         the cluster test bed
    │       └── VmError          a lab VM (image build, boot, reach)
    ├── NotRecorded              a recorded image does not hold the evidence: SKIP, saying what
    ├── CommandFailed            a command run with ``check=True`` exited non-zero
    ├── CommandRefused           a command that cannot be sent as given (a NUL byte...)
    └── FormatError              recorded output is not in the expected format (parsers)
        ├── IperfFormatError
        └── FioFormatError

Findings are plain ``AssertionError`` (pytest's FAIL); ``SelinuxDenialsFound`` and
``SentinelFindings`` are two.
"""

from __future__ import annotations


class AzlError(Exception):
    """Root of every error raised by pytest-azlinux."""


# -- configuration: usage errors -------------------------------------------------------------
class ConfigError(AzlError):
    """The configuration is invalid: the plugin stops with a usage error (exit 4)."""


class TargetsError(ConfigError):
    """The targets file (or a target in it) is invalid; the message names file and field."""


class SettingsError(TargetsError):
    """A target's ``suites.<name>`` settings are invalid; names target and field."""


class ProfileError(TargetsError):
    """A profile file is invalid or a profile cannot be found; names file and field."""


class ControlsError(ConfigError):
    """A hardening controls file is invalid; the message names the file, control and field."""
class WaiversError(ConfigError):
    """The waivers file is invalid; the message names the file, the waiver and the field."""


class RecordingError(ConfigError):
    """A recorded image's file (an AgentBaker release-notes file) is missing, truncated or
    not what it should be; one line naming the file and what is wrong."""


class ReportError(ConfigError):
    """Bad input to a report tool: a missing directory, a file that is not JUnit."""


# -- infrastructure: ERROR, never a finding ----------------------------------------------------
class InfraError(AzlError):
    """The infrastructure failed: reported as ERROR, not as a test failure."""


class HostUnreachable(InfraError):
    """Connecting to a host failed (network, auth, host key)."""

    def __init__(self, host: str, address: str, cause: str) -> None:
        super().__init__(f"host {host} ({address}) unreachable: {cause}")
        self.host = host
        self.address = address
        self.cause = cause


class HostKeyError(HostUnreachable):
    """The host key is unknown or does not match the pinned one."""


class ImageBootError(HostUnreachable):
    """An image target's VM did not come up: the file is unreadable, qemu exited, or sshd
    (or cloud-init) did not answer within the boot timeout."""


class ConnectionLost(InfraError):
    """An established connection dropped while a command ran."""


class OutputLost(InfraError):
    """A command's output could not be kept on the host (its directory is full): whatever
    the command printed is unknown, so there is no result to judge."""


class CommandTimeout(InfraError):
    """A command did not finish within its timeout; it was killed, the host stays usable."""

    def __init__(self, host: str, command: str, timeout: float) -> None:
        super().__init__(f"{host}: command timed out after {timeout:g} s: {command}")
        self.host = host
        self.command = command
        self.timeout = timeout


class ProbeUnavailable(InfraError):
    """The host cannot show what a check needs (e.g. securityfs not mounted)."""


class PackageInventoryError(InfraError):
    """The installed packages could not be read: no package source answers, the source the
    profile names is not there, or a source printed what it never prints."""


class ManifestError(PackageInventoryError):
    """An SPDX package manifest is missing, malformed, cut short, too large or not SPDX;
    the message names the file and what is wrong with it."""


class NotRecorded(AzlError):
    """A recorded image (``kind: recorded``) does not hold the evidence a check needs: the
    check is a SKIP saying what was not recorded, never a FAIL and never an ERROR."""


class CollectorError(InfraError):
    """An SELinux record source could not be read (missing tool, permission, exit code)."""


class MeasurementError(InfraError):
    """The measurement could not be made (tool missing, port blocked, iperf3 error)."""


class ProbeOutputError(InfraError):
    """The probe's output is not what the probe writes (it crashed or was cut short)."""


class DeviceRefused(InfraError):
    """The scratch device may not be used (not named, missing, mounted or in use)."""


class ClusterError(InfraError):
    """The cluster API failed or did not reach the expected state in time."""


class ApiError(ClusterError):
    """The Kubernetes API answered with an error status; ``status`` 0 when there was none."""

    def __init__(self, what: str, status: int, message: str) -> None:
        super().__init__(f"{what}: {status} {message}" if status else f"{what}: {message}")
        self.what = what
        self.status = status
        self.message = message


class PermissionDenied(ApiError):
    """RBAC refused a request (403): the message names the verb, resource and namespace the
    run needs and points at ``azl cluster rbac``, which prints the role that grants them."""

    def __init__(self, what: str, message: str, *, verb: str, resource: str,
                 namespace: str | None, user: str) -> None:
        where = f"in `{namespace}`" if namespace else "cluster-wide"
        super().__init__(what, 403, message)
        self.verb, self.resource, self.namespace, self.user = verb, resource, namespace, user
        self.needs = f"pytest-azlinux needs `{verb}` on `{resource}` {where}"
        self.args = (f"{self.needs}: see `azl cluster rbac` ({user} may not; {what})",)

    def __str__(self) -> str:
        return str(self.args[0])


class CredentialPluginFailed(ClusterError):
    """The kubeconfig user's ``exec`` credential plugin (kubelogin and the like) is missing,
    failed or printed no usable ExecCredential; the message names the command and its
    stderr. At start-up the target resolution turns it into a ``TargetsError`` (exit 4)."""


class PodSecurityRejected(ClusterError):
    """Pod Security admission refused a pod (the namespace level is too strict for it)."""


class WaitTimeout(ClusterError):
    """A bounded wait ran out; the message says what was awaited and what was last seen."""


class CleanupFailed(InfraError):
    """An undo step failed: something the run created may be left on a target."""


class LabError(InfraError):
    """The lab cannot be brought up, changed or taken down."""


class BedError(LabError):
    """The test bed could not be built, started or used; the message says what to do."""


class VmError(LabError):
    """A VM image could not be built, or a VM could not be started or reached."""


# -- findings ---------------------------------------------------------------------------------
class SentinelFindings(AssertionError):
    """A sentinel saw new trouble on a host during a test (kernel log, failed units, denials)."""


# -- commands and recorded output --------------------------------------------------------------
class CommandFailed(AzlError):
    """A command checked with ``check=True`` exited non-zero (a finding, not infra)."""

    def __init__(self, host: str, command: str, rc: int, stderr: str) -> None:
        tail = stderr.strip().splitlines()[-5:]
        detail = ("\n  " + "\n  ".join(tail)) if tail else ""
        super().__init__(f"{host}: command exited {rc}: {command}{detail}")
        self.host = host
        self.command = command
        self.rc = rc
        self.stderr = stderr


class CommandRefused(AzlError):
    """A command cannot be sent as given (a NUL byte, an invalid variable name)."""


class FormatError(AzlError, ValueError):
    """Recorded output is not in the format its parser reads."""


class IperfFormatError(FormatError):
    """The text is not iperf3 JSON output."""


class FioFormatError(FormatError):
    """The text is not fio JSON output."""
