"""Where a call's time goes: `ocpp-console serve` under bench load, sampled with py-spy.

Starts `serve` (or the bare-library baseline), drives it with loadgen.py, records py-spy's raw
stacks for `--seconds` and prints, per thread and per function, the share of all samples
(inclusive: the function or anything it called; self: the function itself).

    python bench/profile.py                       # 1,000 chargers, as fast as answered
    python bench/profile.py --rate 2000 --top 40
    python bench/profile.py --raw /tmp/stacks.txt # keep the stacks (flamegraph.pl reads them)
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import free_port, start_server  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def aggregate(raw: str, top: int) -> str:
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        threads[frames[0]] += n
        names = [f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0].rsplit("/", 1)[-1] + ")"
                 if " (" in f else f for f in frames[1:]]
        for name in set(names):
            inclusive[name] += n
        if names:
            own[names[-1]] += n
    out = [f"{total} samples"]
    out += [f"  {100 * n / total:5.1f} %  {name}" for name, n in threads.most_common()]
    out.append("inclusive:")
    out += [f"  {100 * n / total:5.1f} %  {name}" for name, n in inclusive.most_common(top)]
    out.append("self:")
    out += [f"  {100 * n / total:5.1f} %  {name}" for name, n in own.most_common(top)]
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=("ocpp-console", "baseline"), default="ocpp-console")
    parser.add_argument("--chargers", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100_000.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--sample-rate", type=int, default=250)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--raw", type=Path, help="also keep py-spy's raw stacks here")
    parser.add_argument("--native", action="store_true", help="py-spy --native (C frames too)")
    args = parser.parse_args()
    if shutil.which("py-spy") is None and not (Path(sys.executable).parent / "py-spy").exists():
        print("py-spy is needed: pip install py-spy", file=sys.stderr)
        return 2
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        port = free_port()
        server = start_server(args.kind, port, tmp_path)
        load = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "loadgen.py"), "--url", f"ws://127.0.0.1:{port}",
             "--chargers", str(args.chargers), "--rate", str(args.rate), "--duration", str(args.seconds + 10),
             "--hold", "1"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        )
        try:
            assert load.stderr is not None
            for line in load.stderr:
                if '"connected"' in line:
                    break
            time.sleep(2)
            raw_path = args.raw or tmp_path / "stacks.txt"
            cmd = [py_spy, "record", "--pid", str(server.pid), "--duration", str(int(args.seconds)),
                   "--rate", str(args.sample_rate), "--format", "raw", "--threads", "-o", str(raw_path)]
            if args.native:
                cmd.append("--native")
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            print(load.communicate(timeout=args.seconds + 120)[0].strip().splitlines()[-1])
            print(aggregate(raw_path.read_text(), args.top))
        finally:
            load.kill()
            server.terminate()
            server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
