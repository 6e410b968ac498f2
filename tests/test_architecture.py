"""docs/architecture.md stays true: every module, package or file path it names exists in the repository."""
from __future__ import annotations

import re

from conftest import ROOT

PAGE = ROOT / "docs" / "architecture.md"


def test_every_path_the_architecture_page_names_exists() -> None:
    text = PAGE.read_text(encoding="utf-8")
    tokens = {t.split(":")[0] for t in re.findall(r"`([^`\s]+)`", text)}
    paths = {t for t in tokens if t.startswith(("uer/", "tests/", "benchmarks/", "docs/", "scripts/", "inference/"))}
    bare = {t for t in tokens if re.fullmatch(r"[a-z_0-9]+\.(py|toml)", t)}
    assert len(paths) > 30 and len(bare) > 20, "the page names the modules it describes"
    missing = sorted(p for p in paths
                     if "NAME" not in p and not (any(ROOT.glob(p)) if "*" in p else (ROOT / p).exists()))
    # a bare file name is a top-level file or a module of some package (e.g. a task module in a list of tasks)
    missing += sorted(b for b in bare if "NAME" not in b and not (ROOT / b).exists()
                      and not any((ROOT / "uer").rglob(b)))
    assert missing == [], f"docs/architecture.md names paths that do not exist: {missing}"
