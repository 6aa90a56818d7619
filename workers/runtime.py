"""The process-wide Service the actors use; installed by `mailmentor run` or built from settings."""

from __future__ import annotations

import threading

from mailmentor.service import Service

_lock = threading.Lock()
_service: Service | None = None


def install(service: Service | None) -> None:
    global _service
    with _lock:
        _service = service


def service() -> Service:
    """The installed service, or one built from settings for a standalone dramatiq worker."""
    global _service
    with _lock:
        if _service is None:
            from workers.stack import standalone_service

            _service = standalone_service()
        return _service
