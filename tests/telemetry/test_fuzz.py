"""Fuzzing the decoder: any bytes end in a result or MalformedDatagram, quickly."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fuyun.telemetry.sflow import MalformedDatagram, decode
from tests.telemetry.test_decode import fixture_datagrams

REAL = fixture_datagrams()


def _decode_or_refuse(data: bytes) -> None:
    try:
        d = decode(data)
    except MalformedDatagram:
        return
    # What decodes is consistent with its size: each sample took at least 8 bytes.
    assert (len(d.flows) + len(d.counters)) * 8 <= len(data)


@settings(max_examples=600, deadline=1000)
@given(st.binary(max_size=2048))
def test_random_bytes(data: bytes) -> None:
    _decode_or_refuse(data)


@settings(max_examples=600, deadline=1000)
@given(
    st.sampled_from(REAL),
    st.lists(st.tuples(st.integers(0, 2047), st.integers(0, 255)), max_size=12),
    st.integers(0, 2048),
)
def test_real_datagrams_with_flipped_bytes(
    base: bytes, flips: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(base)
    for pos, value in flips:
        if pos < len(data):
            data[pos] = value
    _decode_or_refuse(bytes(data[: max(cut, 28)]))


@settings(max_examples=300, deadline=1000)
@given(st.sampled_from(REAL), st.integers(28, 1500), st.integers(0, 2**32 - 1))
def test_real_datagrams_with_a_wild_length_or_count(base: bytes, pos: int, value: int) -> None:
    data = bytearray(base)
    pos -= pos % 4
    if pos + 4 <= len(data):
        data[pos : pos + 4] = value.to_bytes(4, "big")
    _decode_or_refuse(bytes(data))
