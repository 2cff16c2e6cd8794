"""The README's Python examples run as written (constructed, not deployed)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)

# The reservation the README's snippets look up, as `capblock lookup` would cache it.
_CACHE = {
    "capblock-constructs:capacity-block:account=111122223333:region=us-east-2"
    ":capacityReservationId=cr-0123456789abcdef0": {
        "availabilityZone": "us-east-2a",
        "capacityReservationId": "cr-0123456789abcdef0",
        "endDate": "2031-03-17T11:30:00Z",
        "instanceCount": 4,
        "instanceType": "p5.48xlarge",
        "startDate": "2031-03-03T11:30:00Z",
    },
    "availability-zones:account=111122223333:region=us-east-2": [
        "us-east-2a",
        "us-east-2b",
        "us-east-2c",
    ],
}


def test_readme_python_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = _BLOCK.findall(README.read_text())
    assert len(blocks) >= 4, "the README lost its Python examples"
    (tmp_path / "cdk.context.json").write_text(json.dumps(_CACHE))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CAPBLOCK_LOOKUPS", "off")  # the cache must serve every lookup
    namespace: dict[str, object] = {}
    exec(compile("\n".join(blocks), str(README), "exec"), namespace)
    assert type(namespace["nodes"]).__name__ == "CapacityBlockSelfManagedNodeGroup"
    assert type(namespace["template"]).__name__ == "CapacityBlockLaunchTemplate"
