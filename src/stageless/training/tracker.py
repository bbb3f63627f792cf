"""XGBoost's RabitTracker in a small process of its own.

The launcher never imports XGBoost itself: the tracker process starts while the workers
start, prints the address workers connect to as one JSON line, and exits when training
is over. Its log lines ("Task 0 got rank 0") stay out of the user's terminal.
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    workers, host, port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    from xgboost.tracker import RabitTracker

    tracker = RabitTracker(n_workers=workers, host_ip=host, port=port, sortby="task")
    tracker.start()
    print(json.dumps(tracker.worker_args()), flush=True)
    tracker.wait_for()


if __name__ == "__main__":
    main()
