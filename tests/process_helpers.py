"""Helpers for tests that start and signal real processes."""
import signal


def foreground_signals() -> None:
    """``preexec_fn``: Ctrl-C at its default action, as in a terminal's foreground job.  A test
    runner started in the background of a non-interactive shell inherits SIGINT ignored, and a
    child would keep ignoring it (Python then installs no KeyboardInterrupt handler)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
