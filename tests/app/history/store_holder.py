"""Another OSS Desk process, as far as the history is concerned: it opens the store (taking its
lock), may start streaming an answer, and says so on stdout as one JSON line.

    python -m tests.app.history.store_holder DB [--stream] [--exit-after S] [--fork-child]

Then it holds on until stdin closes (or S seconds pass, or it is killed). --fork-child also
fork()s a child that outlives it by sleeping, and reports the child's pid.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time

from app.history import HistoryStore


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("db")
    p.add_argument("--stream", action="store_true")
    p.add_argument("--exit-after", type=float)
    p.add_argument("--fork-child", action="store_true")
    args = p.parse_args()
    store = HistoryStore(args.db)
    facts: dict[str, object] = {"pid": os.getpid()}
    if args.stream:
        conversation = store.create_conversation()
        store.add_user_message(conversation, "Tell me a long story")
        answer = store.begin_assistant_message(conversation, "high")
        store.append_to_message(answer, "Once upon a time")
        facts["message_id"] = answer
    if args.fork_child:
        ready, say_ready = os.pipe()
        child = os.fork()
        if child == 0:  # fork()'s handlers have run by now
            os.write(say_ready, b"!")
            time.sleep(60)  # a long-lived child, e.g. a worker process
            os._exit(0)
        os.read(ready, 1)
        facts["child_pid"] = child
    print(json.dumps(facts), flush=True)
    if args.exit_after is not None:
        # Exits the way a process that has finished quitting does; the kernel drops the lock.
        timer = threading.Timer(args.exit_after, lambda: os._exit(0))
        timer.start()
    sys.stdin.read()  # until the test closes our stdin
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
