"""The README's first example runs as written, on the embedded default store."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_runs_and_finds_what_it_says(private_store):
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.S)
    assert block is not None
    namespace: dict = {}
    exec(compile(block.group(1), "README.md", "exec"), namespace)
    report = namespace["report"]
    assert (report.rows, report.upserted, report.failed.empty) == (2, 2, True)
    df = namespace["df"]
    assert df.qdrant.search("notes", "largest planet")["topic"].iloc[0] == "planets"
    bm25 = df.qdrant.search("notes", "dough", using="bm25", filter={"topic": "cooking"})
    assert bm25["topic"].tolist() == ["cooking"]
    assert (private_store / "notes" / "qinb.json").is_file()
