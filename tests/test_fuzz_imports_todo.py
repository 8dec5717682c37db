"""TODO(issue 8, with the comparator colleague of issue 4): fuzz the import of stored exports.

The export/import code does not exist on this branch yet. When it lands, this file should
become a hypothesis test like tests/test_fuzz.py: generated and mutated JSONL exports (broken
lines, wrong types, unknown verdicts, duplicated measurement ids, hostile strings) are imported
into a fresh store; each either imports completely or fails with one HarnessError naming the
file and line, exit code 2 from the CLI, and leaves the store exactly as it was (no partial
import).
"""

import pytest

pytest.skip("export/import is issue 4's code, not on this branch yet (see the module docstring)",
            allow_module_level=True)
