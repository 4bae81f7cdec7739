"""The worker plugin of a Dask upsert (imported only where ``distributed`` is)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from distributed import WorkerPlugin

__all__ = ["QinbWorker"]


class QinbWorker(WorkerPlugin):
    """A Dask worker plugin: tells each worker where the client's local models and embedding
    cache are (the model directories registered in this process, ``QINB_MODELS``,
    ``QINB_CACHE``), so that workers on this machine load the same models and share the cache.
    A worker loads each model once, on its first partition, and keeps it for the next ones."""

    def __init__(self) -> None:
        from qinb import cache, models

        self.registered = {name: str(path) for name, path in models._registered.items()}
        self.env = {"QINB_MODELS": str(models.models_dir()), "QINB_CACHE": str(cache.path()),
                    **{k: v for k, v in os.environ.items() if k == "HF_HUB_OFFLINE"}}

    def setup(self, worker: Any = None) -> None:
        from qinb import models

        os.environ.update(self.env)
        for name, path in self.registered.items():
            if models._registered.get(name) != Path(path):  # registering again unloads models
                models.register_local(name, path)
