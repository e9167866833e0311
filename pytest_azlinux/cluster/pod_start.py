"""Why a pod that does not run yet never will: its containers' terminal waiting reasons.

A pod whose image cannot be pulled stays ``Pending`` for ever; the kubelet says why in each
container's ``state.waiting`` (``reason`` and ``message``) long before any timeout. The
reasons and messages are the kubelet's (k8s.io/kubernetes v1.37.2,
pkg/kubelet/images/image_manager.go and types.go, pkg/kubelet/kuberuntime/
kuberuntime_container.go): a failed pull is ``ErrImagePull`` (or the CRI's
``RegistryUnavailable``, ``SignatureValidationFailed``) with the cause as message; the next
sync, while the pull backs off, shows ``ImagePullBackOff`` with ``Back-off pulling image
"<image>"``, to which newer kubelets (v1.37.2 does) append ``: <reason>: <cause>`` of the
failed pull; for older ones the cause seen at the failed pull is quoted instead.

Pure: :class:`PodStart` reads pod objects (the API's JSON or the client's model as a dict)
one poll after another, so it is tested on the kubelet's real status shapes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# The kubelet will not start the container without a change to the pod or the node: a pull
# already failed and is backing off, the image name is invalid, the policy forbids the pull,
# the image cannot be inspected, or the container's configuration (a missing ConfigMap or
# Secret, runAsNonRoot with a root image) cannot be met.
CANNOT_START = frozenset({
    "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull", "ImageInspectError",
    "CreateContainerConfigError",
})
# A pull failed once: the kubelet tries again after a back-off (a registry that hiccuped may
# answer then), so this alone is not the end; the back-off that follows is.
PULL_FAILED = frozenset({"ErrImagePull", "RegistryUnavailable", "SignatureValidationFailed"})


def _get(obj: Mapping[str, Any], camel: str, snake: str) -> Any:
    """A field of the API's JSON (camelCase) or of the client's ``to_dict()`` (snake_case)."""
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def waiting_states(pod: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """``(container, reason, message)`` of each container (init containers first) that waits."""
    status = pod.get("status") or {}
    out = []
    for key in (("initContainerStatuses", "init_container_statuses"),
                ("containerStatuses", "container_statuses")):
        for c in _get(status, *key) or []:
            waiting = (c.get("state") or {}).get("waiting")
            if waiting and waiting.get("reason"):
                out.append((str(c.get("name", "?")), str(waiting["reason"]),
                            str(waiting.get("message") or "")))
    return out


@dataclass
class PodStart:
    """Follows one pod from poll to poll; :meth:`blocker` says when it cannot start."""

    pull_errors: dict[str, str] = field(default_factory=dict)  # container -> last pull error

    def blocker(self, pod: Mapping[str, Any]) -> str | None:
        """Why the pod cannot start, quoting the kubelet (``container main: ImagePullBackOff:
        Back-off pulling image "x": ErrImagePull: ...``), or None while it still may."""
        for container, reason, message in waiting_states(pod):
            if reason in PULL_FAILED:
                self.pull_errors[container] = f"{reason}: {message}" if message else reason
                continue
            if reason not in CANNOT_START:
                continue
            said = message or "(the kubelet gave no message)"
            cause = self.pull_errors.get(container)
            if reason == "ImagePullBackOff" and cause and cause not in said:
                said = f"{said}; the pull failed with {cause}"  # an older kubelet
            return f"container {container}: {reason}: {said}"
        return None
