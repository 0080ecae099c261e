"""``main(argv)``: parse, run, and turn every failure into one line and an exit status."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import typer

from racefree.cli import failures, options
from racefree.cli.exits import ExitCode

PROG = "racefree"


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``racefree`` with ``argv`` (default: the process's); return the exit status."""
    from racefree.cli.app import build

    command = build()
    args = options.hoist(command, sys.argv[1:] if argv is None else argv)
    quiet = _quiet_logs()
    try:
        status = command.main(args=args, prog_name=PROG, standalone_mode=False)
    except typer.Exit as done:
        return int(done.exit_code)
    except typer.Abort:
        sys.stderr.write(failures.line("aborted"))
        return ExitCode.INTERRUPTED
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    except typer.TyperException as exc:  # click's usage errors: one line, exit 2
        return _usage(exc)
    except Exception as exc:  # every failure is one line, never a traceback
        code, message = failures.classify(exc)
        sys.stderr.write(failures.line(message))
        return code
    finally:
        if quiet is not None:
            logging.getLogger().removeHandler(quiet)
    return status if isinstance(status, int) else ExitCode.OK


def _quiet_logs() -> logging.Handler | None:
    """Keep log records off stderr, which carries a command's one error line only.

    The domain logs its events (``KILL_SWITCH_ACTIVATED``) and the database driver its
    connection attempts; with no handler configured Python would print each bare on
    stderr. ``serve`` configures logging itself (:func:`racefree.logs.configure` replaces
    this handler); a caller that configured logging keeps its own.
    """
    root = logging.getLogger()
    if root.handlers:
        return None
    handler = logging.NullHandler()
    root.addHandler(handler)
    return handler


def _usage(exc: typer.TyperException) -> int:
    message = getattr(exc, "format_message", lambda: str(exc))()
    if message:  # empty when the help was shown instead (a group without its command)
        context = getattr(exc, "ctx", None)
        where = getattr(context, "command_path", PROG)
        sys.stderr.write(failures.line(f"{message} (see `{where} --help`)"))
    return int(getattr(exc, "exit_code", ExitCode.USAGE))
