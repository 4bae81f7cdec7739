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
    A worker loads each model once, on its first partition, and keeps it for the next ones.

    A worker's models run with its share of the cores: its Dask threads divided among the
    partitions it works on at once (``threads=1`` for a worker of one or two threads), unless
    a spec's options say ``threads``. onnxruntime would otherwise start a thread per core in
    every worker process: two workers on two cores would run four between them (0.71x of one
    process's speed here, against 1.0x with one thread each)."""

    def __init__(self, at_once: int) -> None:
        from qinb import cache, models

        self.at_once = at_once
        self.client_pid = os.getpid()
        self.registered = {name: str(path) for name, path in models._registered.items()}
        self.env = {"QINB_MODELS": str(models.models_dir()), "QINB_CACHE": str(cache.path()),
                    **{k: v for k, v in os.environ.items() if k == "HF_HUB_OFFLINE"}}

    def setup(self, worker: Any = None) -> None:
        from qinb import models

        os.environ.update(self.env)
        if os.getpid() != self.client_pid:  # threaded workers share the client's models as is
            nthreads = getattr(getattr(worker, "state", None), "nthreads", None) or 1
            models.runtime_defaults["threads"] = max(1, nthreads // self.at_once)
        for name, path in self.registered.items():
            if models._registered.get(name) != Path(path):  # registering again unloads models
                models.register_local(name, path)
