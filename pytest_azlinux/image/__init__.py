"""Image files as targets: boot a qcow2, raw or VHD/VHDX file under qemu and test it.

- ``seed``: the cloud-init NoCloud seed (a user with a fresh key, sudo, a pinned host key,
  a static address on the run's bridge);
- ``boot``: one instance: overlay, seed, tap, qemu, the waits for sshd and cloud-init;
- ``claims``: what the file itself says (os-release read from the disk before boot);
- ``run``: every instance of one target, booted in the background, torn down at the end;
- ``capabilities``: azldev's ``{capabilities}`` and the suites that apply to them.

The target kind (``kinds/image.py``) imports this package only when an image target is
selected. qemu, taps, bridges and keys come from ``vm/``, the layer shared with the lab's
VMs; nothing here imports the lab.
"""
