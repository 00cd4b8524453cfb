import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent / "common"))

from harness import ensure_vhost


@pytest.fixture(scope="session", autouse=True)
def _rabbitmq_vhost() -> None:
    ensure_vhost()
