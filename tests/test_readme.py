"""The README's config examples are real configs (docs that are executed cannot drift)."""

import re
from pathlib import Path

import yaml

from plait.config import Config

README = Path(__file__).resolve().parents[1] / "README.md"


def yaml_blocks() -> list[dict]:
    return [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", README.read_text(), re.S)]


def test_readme_configs_parse():
    blocks = yaml_blocks()
    table_config = Config.from_dict(blocks[0])
    assert table_config.model.fusion == "gated" and len(table_config.fields) == 5
    for block in blocks[1:]:  # every other example is a section or two of a config
        Config.from_dict({"task": {"label": "fault"}, "fields": {"x": "tabular"}, **block})
    split = next(b for b in blocks[1:] if "split" in b.get("data", {}))
    assert Config.from_dict({**blocks[0], "data": split["data"]}).data.split.group == "subject"
    streams_block = next(b for b in blocks if "streams" in b and "sources" in b["streams"])
    streams_config = Config.from_dict({"task": {"label": "fault"}, **streams_block})
    assert streams_config.streams is not None
    assert [s.name for s in streams_config.streams.streams] == [
        "vibration",
        "thermal",
        "sound",
        "note",
        "machines",
    ]
    assert streams_config.table_path().name == "samples.parquet"


def test_the_limits_table_matches_the_serving_defaults():
    from plait.config_yaml import MAX_VALUES
    from plait.serving.settings import MIB, ServeSettings

    table = README.read_text().split("## Limits", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| `([a-z_]+)` \| ([^|]+) \|", table, re.M))
    units = {"MiB": MIB, "Mpx": 1_000_000, "s": 1, "": 1}
    defaults = ServeSettings(api_key=None)
    checked = 0
    for name, shown in rows.items():
        if not hasattr(defaults, name):
            continue
        number, unit = re.fullmatch(r"([\d,.]+)\s*([A-Za-z]*)", shown.strip()).groups()
        assert float(number.replace(",", "")) * units[unit] == getattr(defaults, name), name
        checked += 1
    assert checked >= 13
    assert f"{MAX_VALUES:,} values" in table
