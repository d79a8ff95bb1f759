"""Helpers for tests that start and signal real processes."""
import signal


def foreground_signals() -> None:
    """``preexec_fn``: Ctrl-C and SIGTERM at their default action and not blocked, as in a
    terminal's foreground job.  A test runner started in the background of a non-interactive
    shell inherits SIGINT ignored, and a child would keep ignoring it (Python then installs no
    KeyboardInterrupt handler); a blocked signal is inherited the same way and would stay
    pending for the whole run."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
