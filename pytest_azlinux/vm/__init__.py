"""qemu VMs on this machine: the layer under image targets (``image/``) and lab VMs (``lab/``).

- ``qemu``: the one qemu command line (disks, a tap, the console, a kernel or firmware boot);
- ``process``: a running qemu found again by its ``-name`` (pid file, stop, console tail)
  and the wait for its sshd;
- ``accel``: KVM or TCG, and where VM things are cached;
- ``net``: addresses in 198.18.0.0/15, bridges and taps, interface names;
- ``keys``: SSH keys made in-process (client keys, host keys pinned before boot);
- ``firmware``: UEFI Secure Boot: the lab's PK/KEK/db, a per-VM enrolled OVMF vars file;
- ``tpm``: a vTPM per VM (swtpm, TPM 2.0).

Nothing here knows of image targets or of the lab; both use it.
"""
