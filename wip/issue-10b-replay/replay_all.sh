#!/bin/bash
# Issue 10 item 3 ("core domain-free") replayed on a checkout of a newer main, one commit per
# move. Idempotent: a move already made is skipped, so a run that stopped can be re-run.
#
#   cd <worktree on the new main, with its own venv: make .venv/.installed>
#   bash <this dir>/replay_all.sh [--pick REF]
#
# --pick REF  first cherry-pick the hand-made commits of REF (default: none; see HAND below)
#             that this checkout lacks; a conflict in core/settings.py or docs/settings.md is
#             resolved by keeping both sides (settings are only added) and regenerating the
#             docs; any other conflict stops the run (resolve, `git cherry-pick --continue`,
#             re-run).
#
# Then, each a commit (skipped when already made): the scripts themselves (wip/), the users of
# the old seeding helpers that main added since (move_factory.py again), token
# prefixes + AuditContext.subjects, error codes (+ regenerated client), tables, core tests on
# own tables, settings, docs. After each move: ruff --fix, ruff format, ruff check, mypy,
# lint-imports, `racefree docs` (the generated docs must not change: the run stops if they
# do) -- the checks the brief asks for -- and pytest --collect-only (a test importing a name a
# move took away). A script's "CHECK by hand" / "WARNING" / "NOTE"
# lines are collected and printed at the end: read them.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
S=$(mktemp -d)  # the scripts as this run started (a move never edits the running scripts)
cp "$HERE"/*.py "$HERE"/*.sh "$HERE"/*.md "$S"/
NOTES=$(mktemp)
PICK=""
if [ "${1:-}" = "--pick" ]; then PICK=${2:?--pick needs a ref}; fi

# the hand-made commits (issue 10 items 2 and 7), by subject prefix, oldest first
HAND=(
  "Gates instead of wall-clock TTL assumptions"
  "Plan-group rules have one home"
  "One seeding factory (tests/factory.py)"
  # changes what two tests assert (next_after_id of a short page: null -> the last id);
  # drop this line to leave /v1/agents and /v1/sessions paging as main has it
  "One pagination convention (http/paging.py"
)

# this checkout's src first, whichever checkout the venv was installed from
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
[ -x .venv/bin/ruff ] || { echo "no .venv here: make .venv/.installed first" >&2; exit 2; }
git diff --quiet && git diff --cached --quiet || { echo "uncommitted changes: commit or stash" >&2; exit 2; }

step() {  # one check: quiet when it passes, its output and a stop when it fails
  local out
  if ! out=$("$@" 2>&1); then printf '%s\n' "$out" | tail -30; echo "FAILED: $*" >&2; exit 1; fi
}

checks() {  # the per-step checks of the brief; the run stops on a failure
  .venv/bin/ruff check --fix -q src tests bench examples >/dev/null 2>&1 || true
  step .venv/bin/ruff format -q src tests bench examples
  step .venv/bin/ruff check -q src tests bench examples
  step .venv/bin/mypy
  step .venv/bin/lint-imports
  step .venv/bin/racefree docs
  # mypy checks src only: collecting the tests catches a test importing what a move took away
  # (not between the picks: main's new tests meet the factory at the "factory users" step)
  if [ "${1:-}" != picking ]; then
    step .venv/bin/python -m pytest --collect-only -q -p no:randomly
    echo "   checks pass (ruff, mypy, lint-imports, racefree docs, test collection)"
  else
    echo "   checks pass (ruff, mypy, lint-imports, racefree docs)"
  fi
}

docs_unchanged() {  # generated docs must not change (the moves keep every name and order)
  if ! git diff --quiet -- docs/errors.md docs/settings.md docs/http-api.md; then
    git diff --stat -- docs | cat
    echo "generated docs changed: look at git diff docs before committing" >&2
    exit 1
  fi
}

commit() {  # commit what the moves touch, if anything changed
  git add -A -- src tests bench examples docs wip pyproject.toml README.md Makefile .ci
  if git diff --cached --quiet; then echo "   (nothing to commit)"; else git commit -qm "$1"; echo "   committed $(git rev-parse --short HEAD)"; fi
}

run() {  # a move script; its remarks go to the notes
  local out rc=0
  out=$(python3 "$S/$1" 2>&1) || rc=$?
  printf '%s\n' "$out" >>"$NOTES"
  printf '%s\n' "$out" | grep -v '^rewrote\|^$' | sed 's/^/   /' || true
  [ "$rc" = 0 ] || { echo "$1 failed (exit $rc)" >&2; exit 1; }
}

# -- the hand-made commits ------------------------------------------------------------------
if [ -n "$PICK" ]; then
  for subject in "${HAND[@]}"; do
    if git log --format=%s -300 | grep -qF "$subject"; then echo "== have: $subject"; continue; fi
    c=$(git log --format='%H %s' "$PICK" -300 | grep -F " $subject" | head -1 | cut -d' ' -f1)
    [ -n "$c" ] || { echo "no commit '$subject' on $PICK" >&2; exit 1; }
    echo "== pick $subject ($c)"
    if ! git cherry-pick "$c" >/dev/null 2>&1; then
      for f in $(git diff --name-only --diff-filter=U); do
        case "$f" in
          src/racefree/core/settings.py|src/racefree/settings.py|docs/settings.md)
            python3 - "$f" <<'EOF'
import re, sys
from pathlib import Path
p = Path(sys.argv[1])
p.write_text(re.sub(r"<<<<<<< [^\n]*\n(.*?)=======\n(.*?)>>>>>>> [^\n]*\n",
                    lambda m: m.group(1) + m.group(2), p.read_text(), flags=re.S))
EOF
            git add "$f" ;;
          *) echo "conflict in $f: resolve, git cherry-pick --continue, re-run" >&2; exit 1 ;;
        esac
      done
      .venv/bin/racefree docs >/dev/null; git add docs
      GIT_EDITOR=true git cherry-pick --continue >/dev/null
    fi
    checks picking
  done
fi

# -- the scripts ----------------------------------------------------------------------------
echo "== scripts"
mkdir -p wip/issue-10b-replay
cp "$S"/*.py "$S"/*.sh "$S"/*.md wip/issue-10b-replay/
commit "wip/issue-10b-replay: the scripts that make issue 10's core-domain-free moves on a newer main, and replay_all.sh, the driver that runs them one commit per move"

# -- 0. tests main added since the factory commit seed through it too -----------------------
echo "== factory users"
if [ -f tests/factory.py ]; then run move_factory.py; fi
checks
commit "Tests added on main seed through tests/factory.py too (the old helpers' users rewritten by move_factory.py)"

# -- 1. token prefixes + AuditContext -------------------------------------------------------
echo "== prefixes + audit context"
run move_prefixes.py
grep -q "subjects: Mapping" src/racefree/core/machine.py || run move_audit_context.py
checks
commit "Token prefixes live with their owners (operators.OPERATOR_PREFIX, sessions.model.SESSION_PREFIX); AuditContext names no domain: subjects is a mapping of audit subject columns the moving domain passes, audit.record takes it (move_prefixes.py, move_audit_context.py)"

# -- 2. error codes -------------------------------------------------------------------------
echo "== codes"
if [ ! -f src/racefree/catalog.py ]; then run move_codes.py; fi
checks
.venv/bin/python -m racefree.client_codegen >/dev/null
docs_unchanged
commit "core is domain-free in its error codes: core/errors.py keeps the mechanism (Code, ErrorSpec, register, spec_of, find, RacefreeError, problem) and its own GENERAL, LOCK, state-machine and Idempotency-Key codes; each layer declares its codes in <layer>/errors.py; racefree.catalog assembles the whole catalog (docs/errors.md unchanged; the generated client lists the codes in catalog order). Moved by move_codes.py"

# -- 3. tables ------------------------------------------------------------------------------
echo "== tables"
if [ ! -f src/racefree/schema.py ]; then run move_tables.py; fi
checks
docs_unchanged
commit "Tables live with their owners (<layer>/tables.py on core's shared MetaData; core keeps its mechanisms' tables: audit_log and audit_chain, locks, lock_tokens, idempotency_keys; console_sessions is the console's; AutoStop owns the transactions indexes its figures read); racefree.schema imports them all for Alembic and the drift test. Moved by move_tables.py"

# -- 4. core tests on core's own tables -----------------------------------------------------
echo "== core tests"
run move_core_tests.py
checks
commit "core is tested on its own tables: test_cas and test_db create test-only probe tables instead of writing agents, accounts and nonces; test_tokens names its own prefixes; the catalog contract test (it imports the app's racefree.catalog) is tests/test_catalog.py. Moved by move_core_tests.py"

# -- 5. settings ----------------------------------------------------------------------------
echo "== settings"
if [ -f src/racefree/core/settings.py ]; then run move_settings.py; fi
checks
docs_unchanged
commit "Settings live with the layers that read them (sessions, killswitch, transactions, plans, events, autostop: <layer>/settings.py); racefree.settings composes them with the service's, the HTTP edge's and the workers' own, in docs/settings.md's order (unchanged). Moved by move_settings.py"

# -- 6. docs --------------------------------------------------------------------------------
echo "== docs"
run move_docs.py
commit "Docs say where codes, tables, settings and token prefixes live (concepts: layers and the app's assemblies) and how tests seed and wait (testing: tests/factory.py, gates instead of clocks). Written by move_docs.py"

# -- leftovers ------------------------------------------------------------------------------
echo "== left in core (should be nothing domain's):"
grep -rn "_PREFIX = \|^[a-z_]* = sa.Table(\|class ErrorCode\|^class Settings\|    agent_id: str | None = None" \
  src/racefree/core --include=*.py \
  | grep -v "^src/racefree/core/schema.py:[0-9]*:\(audit_log\|audit_chain\|locks\|lock_tokens\|idempotency_keys\) = \|core/audit.py" \
  || echo "   nothing"
echo "== remarks of the scripts (read them):"
grep -E "CHECK|WARNING|NOTE|LEFT" "$NOTES" || echo "   none"
rm -rf "$S" "$NOTES"
echo "== done: $(git log --oneline -1 | cut -c1-80)"
echo "   now: targeted tests, then RACEFREE_REQUIRE_POSTGRES=1 make test; make lint typecheck"
