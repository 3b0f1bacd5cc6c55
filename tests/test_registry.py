import pytest

from plait.errors import UnknownNameError
from plait.fusion import FUSIONS
from plait.modalities import MODALITIES
from plait.registry import Registry


def test_unknown_name_suggests_and_lists():
    with pytest.raises(UnknownNameError) as err:
        FUSIONS.get("concatt")
    assert str(err.value) == (
        "unknown fusion 'concatt'; did you mean 'concat'? Available: " + ", ".join(FUSIONS.names())
    )


def test_no_suggestion_when_nothing_close():
    reg: Registry[int] = Registry("thing")
    reg.register("alpha", 1)
    with pytest.raises(UnknownNameError, match=r"^unknown thing 'zzz' Available: alpha$"):
        reg.get("zzz")


def test_duplicate_registration_refused():
    reg: Registry[int] = Registry("thing")
    reg.register("a", 1)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a", 2)


def test_unregister_removes_and_returns():
    reg: Registry[int] = Registry("thing")
    reg.register("a", 1)
    assert reg.unregister("a") == 1 and "a" not in reg and len(reg) == 0
    with pytest.raises(UnknownNameError, match="unknown thing 'a'"):
        reg.unregister("a")


def test_every_modality_is_registered_under_its_kind():
    for kind in MODALITIES:
        assert MODALITIES.get(kind).kind == kind
