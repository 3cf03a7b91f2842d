"""Node processes for the data-transfer tests: the p2p harness (`tests/p2p/conftest.py`), reused."""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("_p2p_conftest", Path(__file__).parents[1] / "p2p" / "conftest.py")
_p2p = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_p2p)

NodeProcess = _p2p.NodeProcess
spawn = _p2p.spawn
random_bytes = _p2p.random_bytes
