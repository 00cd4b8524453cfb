import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
# billing's world builders (providers, enrollments, tariffs) serve the region-scope matrix
sys.path.insert(0, str(Path(__file__).parent.parent / "billing"))
