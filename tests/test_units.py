import pytest

from leeroo_local.units import format_size, parse_size


@pytest.mark.parametrize("text,expected", [
    ("24GB", 24 * 10**9), ("24 GiB", 24 * 2**30), ("512MB", 512 * 10**6), ("1.5T", 1.5e12),
    ("100", 100), (" 8gib ", 8 * 2**30), (4096, 4096),
])
def test_parse_size(text, expected):
    assert parse_size(text) == int(expected)


@pytest.mark.parametrize("bad", ["", "GB", "12XB", "-3GB", "1e9"])
def test_parse_size_rejects(bad):
    with pytest.raises(ValueError):
        parse_size(bad)


def test_format_size_round_trips_binary():
    assert format_size(1536 * 2**20) == "1.50 GiB"
    assert format_size(999) == "999 B"
    assert format_size(4.92e9, binary=False) == "4.92 GB"
