"""``python -m bench [NAME [ARGS...]]``: run one benchmark, or all of them."""

from __future__ import annotations

import importlib
import pkgutil
import sys

from bench import harness

NOT_BENCHMARKS = {"harness", "databases"}


def available() -> list[str]:
    names = [m.name for m in pkgutil.iter_modules([str(harness.BENCH_DIR)])]
    return sorted(n for n in names if n not in NOT_BENCHMARKS and not n.startswith("_"))


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print(f"usage: python -m bench [NAME [ARGS...]]\nbenchmarks: {', '.join(available())}")
        return 0
    names = [argv[0]] if argv else available()
    rest = argv[1:] if argv else []
    for name in names:
        if name not in available():
            print(f"bench: unknown benchmark {name!r}; have {', '.join(available())}")
            return 2
        print(f"== {name}")
        importlib.import_module(f"bench.{name}").main(rest)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
