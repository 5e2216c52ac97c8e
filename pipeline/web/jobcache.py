"""The MoM's job cache, read for the status page: a job's full returns (the state output behind a grid cell).

Read through Salt's own ``jobs.list_job`` runner with the MoM's master options (whatever job cache that master is
configured with: its local cache, or an external one such as Redis), so saltpipe never parses the cache's files
itself. Only configured when the pipeline config has ``salt.master_config`` (or ``saltpipe serve
--master-config``) and this process runs where that master's cache is readable. Results are cached in memory
per jid: a finished job's returns do not change, and a page must not run a runner per cell.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.errors import SaltError


class MasterJobCache:
    """:class:`pipeline.web.data.JobCache` over a master's ``jobs.list_job`` runner."""

    def __init__(self, master_config: Path, max_jobs: int = 256) -> None:
        if not Path(master_config).is_file():
            raise SaltError(f"{master_config}: no such master config file",
                            hint="point --master-config at the master-of-masters' config, or leave it out")
        self.master_config = Path(master_config)
        self.max_jobs = max_jobs
        self._runner: Any = None
        self._cache: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def _client(self) -> Any:
        if self._runner is None:
            import salt.config  # pylint: disable=import-outside-toplevel
            import salt.runner  # pylint: disable=import-outside-toplevel

            self._runner = salt.runner.RunnerClient(salt.config.master_config(str(self.master_config)))
        return self._runner

    def returns(self, jid: str) -> Mapping[str, Any]:
        """Minion -> its raw return of ``jid`` (what the state run printed); empty when the cache has none."""
        if not jid.isdigit():
            return {}
        with self._lock:
            if jid in self._cache:
                return self._cache[jid]
            data = self._client().cmd("jobs.list_job", [jid], print_event=False)
            result = (data or {}).get("Result") if isinstance(data, Mapping) else None
            out = {}
            for minion, item in (result or {}).items():
                out[str(minion)] = item.get("return") if isinstance(item, Mapping) and "return" in item else item
            if out:  # an empty answer may be a job still running: ask again next time
                if len(self._cache) >= self.max_jobs:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[jid] = out
            return out
