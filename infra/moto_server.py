"""Runs moto's server for the local stack and exits as soon as the process that started it is
gone, so an interrupted stack or test run never leaves an emulator holding a port."""
import os
import sys
import threading
import time

PARENT = os.getppid()


def watch_parent() -> None:
    while True:
        if os.getppid() != PARENT:
            os._exit(0)
        time.sleep(0.5)


threading.Thread(target=watch_parent, daemon=True).start()

from moto.server import main  # noqa: E402  (after the watcher, so a slow import is covered too)

main(sys.argv[1:])
