"""Every stream kind through the same contract: its record is registered under its own name, the
field it writes is read by the modality of that name, and its declared facts agree."""

from __future__ import annotations

import pytest

from plait.align.rules import KINDS, STREAM_KINDS
from plait.errors import UnknownNameError
from plait.modalities import MODALITIES


def test_the_ordered_kinds_are_the_registry() -> None:
    assert sorted(k.name for k in KINDS) == STREAM_KINDS.names()


@pytest.mark.parametrize("name", STREAM_KINDS.names())
def test_stream_kind_contract(name: str) -> None:
    kind = STREAM_KINDS.get(name)
    assert kind.name == name
    assert name in MODALITIES  # the sample-table field it produces is read by this modality
    if kind.media is not None:
        assert kind.media.unreadable in kind.media.columns
    if kind.interpolates or kind.finite:
        assert kind.media is None  # these act on value columns read from a table


def test_an_unknown_kind_suggests_the_nearest() -> None:
    with pytest.raises(UnknownNameError, match="unknown stream kind 'imag'; did you mean 'image'"):
        STREAM_KINDS.get("imag")
