"""Several serving processes under one parent (`run.py` with `SERVER_PROCESSES` above 1).

The parent forks the children, restarts one that dies (a crash takes down only the
connections that child held), and on SIGTERM or SIGINT stops them all before it exits. It
only watches: it serves nothing and holds no database connection or thread, which is what
makes forking safe. Children that keep dying right after their start (a bad setting, a
database that refuses them) make the parent give up and exit non-zero rather than loop.
"""

import ctypes
import logging
import os
import signal
import sys
import threading
import time
import traceback

log = logging.getLogger(__name__)

STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
WATCHED = STOP_SIGNALS | {signal.SIGCHLD}
# A child that exits sooner than this after its start failed to start; this many such
# exits in a row end the server.
EARLY_EXIT_SECONDS = 10
MAX_EARLY_EXITS = 5
RESTART_PAUSE_SECONDS = 0.5  # before the first restart after an early exit; doubles
STOP_TIMEOUT_SECONDS = 10  # how long stopping children may take before they are killed
_PR_SET_PDEATHSIG = 1


def supervise(count, serve):
    """Run `serve(index)` in `count` forked children (index 0 to count - 1) until SIGTERM
    or SIGINT; returns the exit status for the parent: 0 when stopped by a signal, 1 when
    children kept dying at start."""
    if threading.active_count() > 1:  # a forked child would inherit its locks, held or not
        raise RuntimeError(f"cannot fork safely: {threading.enumerate()}")
    # Signals wait in a queue that the loop below reads: no handler can interrupt a fork.
    signal.pthread_sigmask(signal.SIG_BLOCK, WATCHED)
    children = {}  # pid -> (index, when started)
    early_exits = 0
    try:
        for index in range(count):
            children[_fork(index, serve)] = (index, time.monotonic())
        while True:
            info = signal.sigtimedwait(WATCHED, 1.0)
            if info is not None and info.si_signo in STOP_SIGNALS:
                log.info("stopping %d serving processes (%s)", len(children),
                         signal.Signals(info.si_signo).name)
                return 0
            for pid, status in _reap(children):
                index, started = children.pop(pid)
                lived = time.monotonic() - started
                early_exits = early_exits + 1 if lived < EARLY_EXIT_SECONDS else 0
                if early_exits >= MAX_EARLY_EXITS:
                    log.error("serving process %d %s after %.1f s, the %d. early exit in a "
                              "row: giving up", pid, _describe(status), lived, early_exits)
                    return 1
                log.warning("serving process %d %s after %.1f s; starting another", pid,
                            _describe(status), lived)
                # A stop already waiting wins over a restart (a signal to the whole process
                # group reaches the children first); after an early exit, wait a little
                # longer each time, so that a short outage does not use up the attempts.
                if STOP_SIGNALS & signal.sigpending():
                    continue
                if early_exits and signal.sigtimedwait(
                        STOP_SIGNALS, min(RESTART_PAUSE_SECONDS * 2 ** (early_exits - 1),
                                          EARLY_EXIT_SECONDS)) is not None:
                    log.info("stopping %d serving processes", len(children))
                    return 0
                children[_fork(index, serve)] = (index, time.monotonic())
    finally:
        _stop(children)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, WATCHED)


def _fork(index, serve):
    parent = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    status = 1
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # stop at once, as one process does
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which stops us
        _die_with(parent)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, WATCHED)
        serve(index)
        status = 0
    except SystemExit as exc:
        if isinstance(exc.code, int):
            status = exc.code
        elif exc.code is not None:
            print(exc.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:  # a closed pipe: nothing more can be said, and the child
            pass               # must still never go on into the parent's code
        os._exit(status)  # never the parent's exit handlers (its temporary folders)


def _die_with(parent):
    """Have the kernel send SIGTERM to this child when the parent dies (Linux), so that even
    a killed parent leaves no orphan serving."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before that took effect
        os._exit(1)


def _reap(children):
    """(pid, status) of every child that has exited, without waiting."""
    ended = []
    for pid in list(children):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            ended.append((pid, status))
    return ended


def _stop(children):
    """SIGTERM every child, wait for them, SIGKILL those still alive after the timeout."""
    for pid in children:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while children and time.monotonic() < deadline:
        for pid, _status in _reap(children):
            children.pop(pid)
        time.sleep(0.05)
    for pid in children:
        _signal(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    children.clear()


def _signal(pid, signum):
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _describe(status):
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"
