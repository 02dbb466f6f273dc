"""What long-running work reports while it runs; free of torch so that the CLI starts fast."""

from __future__ import annotations


class Progress:
    """Receives stage changes and training steps; the CLI renders them with Rich."""

    def stage(self, name: str) -> None:
        pass

    def step(self, done: int, total: int) -> None:
        pass
