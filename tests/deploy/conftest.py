"""tests/deploy: offline validation of the deploy kit with the real tools.

The helpers live in deploy_helpers.py; this directory is put on sys.path so the
test modules can import it whatever pytest import mode the project uses.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
