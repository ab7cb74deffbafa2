"""A worker that misbehaves on request, for the client's crash/hang tests."""

import os
import time

from lstm_ref.harness.oracles import protocol


def hello(meta, arrays):
    return {"oracle": "fake", "pid": os.getpid()}, {}


def echo(meta, arrays):
    return {"pid": os.getpid()}, arrays


def slow(meta, arrays):
    """Marks a 50 ms ``run`` phase (the profile ``make bench`` prints)."""
    time.sleep(0.05)
    protocol.mark("run")
    return {}, {}


def crash(meta, arrays):
    os._exit(3)


def hang(meta, arrays):
    time.sleep(3600)


def fail(meta, arrays):
    raise RuntimeError("the framework raised")


def refuse(meta, arrays):
    raise protocol.UserError("input 'x' expects 3 dims, got 2")


if __name__ == "__main__":
    protocol.serve(
        {"hello": hello, "echo": echo, "crash": crash, "hang": hang, "fail": fail, "refuse": refuse, "slow": slow}
    )
