"""Slow computations off the UI thread: manifold grids and the map's background layers.

A 40 x 40 grid is 1,600 decodes, and a layer over the visible map thousands of cells: run on the UI
thread either would freeze the window for a noticeable moment, so each runs on a QThreadPool.
onnxruntime and numpy release the GIL while they compute, so the UI thread keeps painting. Every job
carries the request id it was made for; the receiver drops results whose id is no longer the latest
(the user asked again, panned, or switched models, meanwhile).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PyQt6.QtCore import QObject, QRunnable, QThreadPool, pyqtSignal

from .engine import Engine

# What a job may raise that is the user's input or the machine's, not a bug: reported as a message.
JOB_ERRORS = (ValueError, TypeError, RuntimeError, OSError)


@dataclass(frozen=True)
class GridRequest:
    id: int
    n: int
    extent: object                 # "percentiles" or ((xmin, xmax), (ymin, ymax))
    dims: tuple[int, int]
    base: np.ndarray | None        # values of the other latent dims


class LatestWorker(QObject):
    """Runs jobs on a private one-thread pool; emits finished(id, result) or failed(id, message).

    Only the latest request counts: `submit` and `invalidate` make every earlier request stale, a stale
    request still waiting in the queue is skipped, and a stale result is for the receiver to drop."""

    finished = pyqtSignal(int, object)
    failed = pyqtSignal(int, str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        # One thread: jobs queue behind each other instead of competing for the cores with the UI.
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self.latest_id = 0

    def submit_call(self, compute: Callable[[], object], what: str) -> int:
        """Queues compute(); a failure is reported as "Could not compute {what}: ..."."""
        self.latest_id += 1
        self.pool.start(_Job(self, self.latest_id, compute, what))
        return self.latest_id

    def invalidate(self) -> None:
        """Makes every submitted request stale (e.g. the model changed)."""
        self.latest_id += 1

    def is_current(self, request_id: int) -> bool:
        return request_id == self.latest_id

    def wait(self, msecs: int = -1) -> bool:
        return self.pool.waitForDone(msecs)


class GridWorker(LatestWorker):
    """Manifold grids: emits finished(id, runtime.Decoded)."""

    def submit(self, engine: Engine, n: int, extent, dims: tuple[int, int], base: np.ndarray | None) -> GridRequest:
        request = GridRequest(self.latest_id + 1, n, extent, tuple(dims), base)
        self.submit_call(lambda: engine.model.manifold(n, extent=extent, dims=request.dims, base=base),
                         f"the {n}×{n} grid")
        return request


class _Job(QRunnable):
    def __init__(self, worker: LatestWorker, request_id: int, compute: Callable[[], object], what: str):
        super().__init__()
        self.worker, self.request_id, self.compute, self.what = worker, request_id, compute, what

    def run(self) -> None:
        if not self.worker.is_current(self.request_id):
            return  # asked for again since: the newer request is queued behind this one
        try:
            result = self.compute()
        except JOB_ERRORS as exc:
            # Signals emitted from this thread are queued to the worker's (UI) thread.
            self.worker.failed.emit(self.request_id, f"Could not compute {self.what}: {exc}")
            return
        self.worker.finished.emit(self.request_id, result)
