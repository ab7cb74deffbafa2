"""A stand-in for ``convert_one.py`` that misbehaves per mode, for the
converter's crash/refusal/hang tests (no TensorFlow): mode ``ok`` writes a
file, ``refuse`` raises, ``segv`` and ``abort`` die of that signal in
calibration, ``hang`` sleeps in convert."""

import json
import os
import signal
import sys
import time


def main(spec_path):
    spec = json.loads(open(spec_path).read())
    for job in spec["jobs"]:
        model, mode = job["model"], job["mode"]
        base = os.path.join(spec["out_dir"], f"{model}.{mode}")
        print(f"@@tflite {model} {mode} convert", flush=True)
        if mode in ("segv", "abort"):
            print(f"@@tflite {model} {mode} calibration", flush=True)
            os.kill(os.getpid(), signal.SIGSEGV if mode == "segv" else signal.SIGABRT)
        if mode == "hang":
            time.sleep(3600)
        if mode == "refuse":
            result = {"status": "unsupported", "message": "not yet supported for op: 'X'."}
        else:
            open(base + ".tflite", "wb").write(b"TFL3")
            result = {"status": "ok", "message": "", "bytes": 4}
        with open(base + ".json", "w") as f:
            json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1])
