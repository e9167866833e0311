"""When a pod that does not run yet never will (cluster/pod_start.py), on the kubelet's shapes.

``tests/data/pods/unpullable-image.json`` is recorded on the test bed's real nodes
(``tests/integration/test_real_nodes.py::
test_an_image_that_cannot_be_pulled_ends_the_wait_with_the_kubelets_words`` with
``AZL_RECORD_PODS=1``): kubelet v1.37.2 and containerd v2.4.2 pulling an image from a
registry address where nothing listens (the node's loopback), the pod as the API served it at
each poll of the wait. The other statuses are built here with the messages the kubelet
writes (k8s.io/kubernetes v1.37.2, pkg/kubelet/images/image_manager.go), named as such.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pytest_azlinux.cluster.pod_start import PodStart, waiting_states

RECORDED = json.loads(
    (Path(__file__).parent.parent / "data" / "pods" / "unpullable-image.json").read_text())


def _waiting(reason: str, message: str = "", name: str = "main",
             init: bool = False) -> dict[str, Any]:
    """A pending pod whose one container waits: the shape the API serves (camelCase)."""
    status = {"name": name, "ready": False, "restartCount": 0, "image": "img",
              "imageID": "", "started": False,
              "state": {"waiting": {"reason": reason, **({"message": message} if message else {})}}}
    key = "initContainerStatuses" if init else "containerStatuses"
    return {"kind": "Pod", "status": {"phase": "Pending", key: [status]}}


def test_recorded_pull_failure_ends_at_the_back_off_quoting_the_kubelet() -> None:
    image = RECORDED["image"]
    start = PodStart()
    verdicts = [start.blocker(pod) for pod in RECORDED["polls"]]
    # the kubelet said ErrImagePull first (the wait goes on: a pull may be retried) ...
    assert "ErrImagePull" in RECORDED["reasons"], RECORDED["reasons"]
    first = RECORDED["reasons"].index("ErrImagePull")
    assert verdicts[first] is None
    # ... and the back-off that followed ends the wait, with the image and the cause
    said = next(v for v in verdicts if v)
    assert verdicts.index(said) == len(verdicts) - 1  # the last poll: the wait stopped there
    assert said.startswith(f'container debug: ImagePullBackOff: Back-off pulling image "{image}"')
    assert "connection refused" in said
    assert "the pull failed with" not in said  # this kubelet quotes the cause itself


def test_pending_while_the_container_is_being_created_is_not_an_end() -> None:
    start = PodStart()
    assert start.blocker(_waiting("ContainerCreating")) is None
    assert start.blocker({"status": {"phase": "Pending"}}) is None  # not scheduled yet
    assert start.blocker(_waiting("ErrImagePull", "rpc error: code = Unknown")) is None


def test_an_older_kubelets_back_off_is_told_the_cause_seen_at_the_pull() -> None:
    # Built: kubelets that do not append the failed pull's cause to the back-off message.
    start = PodStart()
    cause = ('failed to pull and unpack image "10.0.0.9:5000/x:1": failed to resolve '
             'reference "10.0.0.9:5000/x:1": 10.0.0.9:5000/x:1: not found')
    assert start.blocker(_waiting("ErrImagePull", cause)) is None
    said = start.blocker(_waiting("ImagePullBackOff", 'Back-off pulling image "10.0.0.9:5000/x:1"'))
    assert said == ('container main: ImagePullBackOff: Back-off pulling image '
                    f'"10.0.0.9:5000/x:1"; the pull failed with ErrImagePull: {cause}')


def test_reasons_only_a_change_can_end() -> None:
    # Built with the kubelet's messages for each reason.
    cases = {
        "InvalidImageName": 'Failed to apply default image tag "Busy:Box:1": couldn\'t parse '
                            'image name "Busy:Box:1": invalid reference format',
        "ErrImageNeverPull": 'Container image "busybox:9" is not present with pull policy '
                             "of Never",
        "CreateContainerConfigError": 'configmap "azl-settings" not found',
    }
    for reason, message in cases.items():
        said = PodStart().blocker(_waiting(reason, message, name="debug"))
        assert said == f"container debug: {reason}: {message}"
    # an init container that cannot start stops the pod just the same; no message: said so
    said = PodStart().blocker(_waiting("ImagePullBackOff", name="init", init=True))
    assert said == "container init: ImagePullBackOff: (the kubelet gave no message)"


def test_the_clients_snake_case_dict_is_read_too() -> None:
    pod = {"status": {"phase": "Pending", "container_statuses": [
        {"name": "main", "state": {"waiting": {"reason": "InvalidImageName",
                                               "message": "bad"}}}]}}
    assert waiting_states(pod) == [("main", "InvalidImageName", "bad")]
