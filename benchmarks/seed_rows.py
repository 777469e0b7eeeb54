"""A benchmark's rows kept per seed in a JSON file (``--rows FILE``), so that a run of several hours continues
where it stopped: a seed already measured with the same arguments is read back, not measured again."""

import json
from pathlib import Path

from genaug import atomic


class SeedRows:
    """The rows of ``path`` (none when ``path`` is ``None`` or missing), measured with ``arguments``."""

    def __init__(self, path: Path | None, arguments: dict):
        self.path, self.arguments, self.rows = path, arguments, {}
        if path is not None and path.is_file():
            stored = json.loads(path.read_text())
            if stored["arguments"] != arguments:
                raise SystemExit(f"{path} holds rows measured with other arguments: {stored['arguments']}")
            self.rows = {int(seed): row for seed, row in stored["rows"].items()}

    def get(self, seed: int, measure) -> dict:
        """Seed ``seed``'s row: the stored one, or ``measure(seed)``, stored at once."""
        if seed not in self.rows:
            self.rows[seed] = measure(seed)
            if self.path is not None:
                atomic.write_json(self.path, {"arguments": self.arguments, "rows": self.rows})
        return self.rows[seed]
