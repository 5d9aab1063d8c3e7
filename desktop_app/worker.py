"""Manifold grids off the UI thread.

A 40 x 40 grid is 1,600 decodes: run on the UI thread it would freeze the window for a noticeable
moment, so it runs on a QThreadPool. onnxruntime releases the GIL while it computes, so the UI
thread keeps painting. Every job carries the request id it was made for; the receiver drops results
whose id is no longer the latest (the user asked again, or switched models, meanwhile).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PyQt6.QtCore import QObject, QRunnable, QThreadPool, pyqtSignal

from .engine import Engine


@dataclass(frozen=True)
class GridRequest:
    id: int
    n: int
    extent: object                 # "percentiles" or ((xmin, xmax), (ymin, ymax))
    dims: tuple[int, int]
    base: np.ndarray | None        # values of the other latent dims


class GridWorker(QObject):
    """Computes grids on a private one-thread pool; emits finished(id, runtime.Decoded) or failed(id, message).

    Only the latest request counts: `submit` and `invalidate` make every earlier request stale, a stale
    request still waiting in the queue is skipped, and a stale result is for the receiver to drop."""

    finished = pyqtSignal(int, object)
    failed = pyqtSignal(int, str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        # One thread: grids queue behind each other instead of competing for the 2 cores with the UI.
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self.latest_id = 0

    def submit(self, engine: Engine, n: int, extent, dims: tuple[int, int], base: np.ndarray | None) -> GridRequest:
        self.latest_id += 1
        request = GridRequest(self.latest_id, n, extent, tuple(dims), base)
        self.pool.start(_GridJob(self, engine, request))
        return request

    def invalidate(self) -> None:
        """Makes every submitted request stale (e.g. the model changed)."""
        self.latest_id += 1

    def is_current(self, request_id: int) -> bool:
        return request_id == self.latest_id

    def wait(self, msecs: int = -1) -> bool:
        return self.pool.waitForDone(msecs)


class _GridJob(QRunnable):
    def __init__(self, worker: GridWorker, engine: Engine, request: GridRequest):
        super().__init__()
        self.worker, self.engine, self.request = worker, engine, request

    def run(self) -> None:
        request = self.request
        if not self.worker.is_current(request.id):
            return  # asked for again since: the newer request is queued behind this one
        try:
            manifold = self.engine.model.manifold(request.n, extent=request.extent, dims=tuple(request.dims),
                                                  base=request.base)
        except (ValueError, TypeError, RuntimeError, OSError) as exc:
            # Signals emitted from this thread are queued to the worker's (UI) thread.
            self.worker.failed.emit(request.id, f"Could not compute the {request.n}×{request.n} grid: {exc}")
            return
        self.worker.finished.emit(request.id, manifold)
