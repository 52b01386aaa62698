"""A WSGI module whose import fails in every gunicorn worker with exit 3, at different moments.

Exit 3 is what a worker whose dbinit start-up failed returns (gunicorn's WORKER_BOOT_ERROR).
Worker 0 fails first; worker 1 fails while the arbiter is stopping the others, which makes
gunicorn 27's arbiter exit inside its own halt; workers 2 and up are still booting then. All
but worker 0 ignore SIGTERM, as a worker blocked in a driver call (waiting for a lock) does.
"""

import os
import signal
import sys
import time

folder = os.environ["PROBE_FOLDER"]
for index in range(64):
    try:
        os.close(os.open(os.path.join(folder, f"worker-{index}"), os.O_CREAT | os.O_EXCL))
        break
    except FileExistsError:
        continue
with open(os.path.join(folder, f"pid-{index}"), "w") as fh:
    fh.write(str(os.getpid()))
if index > 0:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
time.sleep({0: 1.0, 1: 2.0}.get(index, 120))
sys.stderr.write(f"probe worker {index} failing to boot\n")
raise SystemExit(3)
