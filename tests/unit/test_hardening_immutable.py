"""The hardening baseline on immutable images: the fix is a change to the image build, and a
control may apply only where the host can be changed (``applies_if: {immutable: false}``)."""

from __future__ import annotations

from pytest_azlinux.hardening.baseline import LevelChoice, skip_reason
from pytest_azlinux.hardening.fixtures import failure_message
from pytest_azlinux.hardening.loader import load_controls
from pytest_azlinux.hardening.model import IMAGE_BUILD
from pytest_azlinux.hardening.settings import HardeningSettings
from pytest_azlinux.profiles import load_profiles


def test_immutable_image_gets_the_image_build_fix() -> None:
    control = load_controls().get("AZL-MOD-001")
    host = failure_message(control, "cramfs loadable", "cannot be loaded")
    assert "  remediation: `printf 'install cramfs /bin/false" in host
    image = failure_message(control, "cramfs loadable", "cannot be loaded", immutable=True)
    assert "remediation (image build): In the Image Customizer config, `os.modules`" in image
    assert "The setting: `printf 'install cramfs /bin/false" in image


def test_a_control_without_its_own_image_fix_gets_the_generic_one() -> None:
    control = load_controls().get("AZL-ACC-001")
    assert not control.remediation_image
    text = control.remediation_for(True)
    assert text.startswith(IMAGE_BUILD) and control.remediation in text
    assert control.remediation_for(None) == control.remediation


def test_applies_if_immutable_false_skips_on_immutable_images_only() -> None:
    control = load_controls().get("AZL-ACC-001")
    control = control.model_copy(update={"applies_if": {"immutable": False}})
    profiles = load_profiles()
    base = profiles.get("azl-3.0")  # immutable not set: counts as false
    level = LevelChoice(2, "test")
    assert skip_reason(control, base, HardeningSettings(), level) is None
    acl_like = base.model_copy(update={"immutable": True,
                                       "sources": {**base.sources, "immutable": "test"}})
    reason = skip_reason(control, acl_like, HardeningSettings(), level)
    assert reason is not None and "has immutable=true (test)" in reason
