"""Where the tests find the repository, its data, its README examples, and the signing key."""

from __future__ import annotations

from pathlib import Path

from app.ml.dataset import SHIPPED_DATASET

TEST_SECRET_KEY = "test-signing-key-long-enough-for-hs512-too-0123456789abcdefghijklmn"
REPO_ROOT = Path(__file__).resolve().parents[2]
TINY_CSV = REPO_ROOT / "tests" / "data" / "tiny.csv"
SHIPPED_CSV = SHIPPED_DATASET


def readme_bash_block(marker: str) -> str:
    """The first bash block between `<!-- marker:start -->` and `<!-- marker:end -->`."""
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split(f"<!-- {marker}:start -->")[1].split(f"<!-- {marker}:end -->")[0]
    return section.split("```bash\n")[1].split("```")[0]
