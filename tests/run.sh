#!/usr/bin/env bash
# The project's test command. It runs, in order:
#   unit         cargo test (debug build): unit tests and the integration tests,
#                including one fresh daemon per case in tests/cases/
#   conformance  a release build of the daemon, then against fresh daemons:
#                scim2-tester (through scim2-cli) on the whole SCIM API,
#                tests/replay/run-cases.py on tests/cases/ and tests/cases/regression/,
#                tests/replay/idp-replay.py as Entra ID (with and without the
#                aadOptscim062020 flag) and as Okta, 300 users and 20 groups each
# Every daemon is stopped with SIGTERM and must exit with status 0.
#
# Usage: tests/run.sh [unit] [conformance]     (no argument runs both)
# Exit status: 0 when every step passed, 1 otherwise.
# Python tools go into .venv at the top of the repository (created when missing).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

# Pinned because scim2-cli's exit status and output format are read below.
readonly SCIM2_CLI_VERSION=0.6.0
readonly START_TIMEOUT=60
readonly STOP_TIMEOUT=30
readonly REPLAY_USERS=300
readonly REPLAY_GROUPS=20

work=$(mktemp -d "${TMPDIR:-/tmp}/idpsync-run.XXXXXX")
pids=()
failures=()
passes=()

cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

heading() {
  printf '\n==> %s\n' "$*"
}

pass() {
  passes+=("$1")
  printf -- '--- PASS %s\n' "$1"
}

fail() {
  failures+=("$1")
  printf -- '--- FAIL %s\n' "$1"
}

# Prints a TCP port on 127.0.0.1 that was free a moment ago.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Returns 0 when GET URL returns 200 over HTTPS, trusting only the PEM file CERT.
health_ok() {
  python3 - "$1" "$2" <<'PY' 2>/dev/null
import ssl, sys, urllib.request
url, cert = sys.argv[1], sys.argv[2]
context = ssl.create_default_context(cafile=cert)
with urllib.request.urlopen(url, context=context, timeout=2) as response:
    sys.exit(0 if response.status == 200 else 1)
PY
}

# Prints the value of "token" in the JSON object on stdin.
json_token() {
  python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])'
}

# start_daemon NAME: starts the release daemon on a new config in $work/NAME,
# waits for GET /health and creates a token. Sets daemon_dir, daemon_pid,
# daemon_base (SCIM base URL), daemon_cert and daemon_token.
start_daemon() {
  local name=$1 port deadline
  daemon_dir="$work/$name"
  mkdir -p "$daemon_dir/permissions"
  port=$(free_port)
  cat >"$daemon_dir/idpsync.toml" <<EOF
[server]
listen = "127.0.0.1:$port"
public_url = "https://127.0.0.1:$port/scim/v2"

[tls]
cert = "tls/cert.pem"
key = "tls/key.pem"
self_signed = true

[store]
path = "idpsync.redb"

[control]
socket = "idpsync.sock"

[permissions]
dir = "permissions"

[export]
path = "organization.json"

[log]
level = "info"
format = "text"
EOF
  "$binary" --config "$daemon_dir/idpsync.toml" serve >"$daemon_dir/daemon.log" 2>&1 &
  daemon_pid=$!
  pids+=("$daemon_pid")
  daemon_base="https://127.0.0.1:$port/scim/v2"
  daemon_cert="$daemon_dir/tls/cert.pem"

  deadline=$((SECONDS + START_TIMEOUT))
  until [[ -s $daemon_cert ]] && health_ok "https://127.0.0.1:$port/health" "$daemon_cert"; do
    if ! kill -0 "$daemon_pid" 2>/dev/null; then
      echo "idpsync serve ($name) exited before serving; its log:"
      cat "$daemon_dir/daemon.log"
      forget_daemon
      return 1
    fi
    if ((SECONDS > deadline)); then
      echo "idpsync serve ($name) did not return 200 on GET /health within ${START_TIMEOUT} s; its log:"
      cat "$daemon_dir/daemon.log"
      kill -KILL "$daemon_pid" 2>/dev/null || true
      forget_daemon
      return 1
    fi
    sleep 0.2
  done

  if ! daemon_token=$("$binary" --config "$daemon_dir/idpsync.toml" token create --name "$name" --json | json_token) ||
    [[ -z $daemon_token ]]; then
    echo "idpsync token create --json ($name) failed"
    kill -KILL "$daemon_pid" 2>/dev/null || true
    forget_daemon
    return 1
  fi
}

# Reaps the current daemon and drops its pid, so that the exit trap never
# signals a pid that the system may have given to another process since.
forget_daemon() {
  local pid kept=()
  wait "$daemon_pid" 2>/dev/null || true
  for pid in "${pids[@]}"; do
    if [[ $pid != "$daemon_pid" ]]; then
      kept+=("$pid")
    fi
  done
  pids=("${kept[@]}")
}

# stop_daemon NAME: sends SIGTERM and requires exit status 0 within STOP_TIMEOUT.
stop_daemon() {
  local name=$1 deadline status=0
  kill -TERM "$daemon_pid"
  deadline=$((SECONDS + STOP_TIMEOUT))
  while kill -0 "$daemon_pid" 2>/dev/null && ((SECONDS <= deadline)); do
    sleep 0.2
  done
  if kill -0 "$daemon_pid" 2>/dev/null; then
    kill -KILL "$daemon_pid"
    forget_daemon
    fail "$name: daemon stops on SIGTERM (still running after ${STOP_TIMEOUT} s)"
    tail -n 40 "$daemon_dir/daemon.log"
    return
  fi
  wait "$daemon_pid" || status=$?
  forget_daemon
  if ((status == 0)); then
    pass "$name: daemon exits 0 on SIGTERM"
  else
    fail "$name: daemon exits 0 on SIGTERM (exit status $status)"
    tail -n 40 "$daemon_dir/daemon.log"
  fi
}

# Prints the last lines of the daemon log after a failed check.
show_log_tail() {
  echo "last lines of the daemon log ($1):"
  tail -n 40 "$daemon_dir/daemon.log"
}

run_unit() {
  heading "cargo test"
  if cargo test; then
    pass "cargo test"
  else
    fail "cargo test"
  fi
}

ensure_venv() {
  if [[ ! -x .venv/bin/python ]]; then
    python3 -m venv .venv
  fi
  if [[ "$(.venv/bin/python -m pip show scim2-cli 2>/dev/null | sed -n 's/^Version: //p')" != "$SCIM2_CLI_VERSION" ]]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check "scim2-cli==$SCIM2_CLI_VERSION"
  fi
}

# scim2-cli prints one line per check, "<STATUS> <title>", and exits 1 unless
# every check is SUCCESS; SKIPPED, COMPLIANT, ACCEPTABLE, DEVIATION, ERROR and
# CRITICAL all count against it.
run_scim2_tester() {
  local status=0 output="$work/scim2-tester.txt"
  heading "scim2-tester $SCIM2_CLI_VERSION (scim2 test)"
  start_daemon scim2-tester || { fail "scim2-tester: daemon start"; return; }
  SSL_CERT_FILE="$daemon_cert" SCIM_CLI_HEADERS="Authorization: Bearer $daemon_token" \
    .venv/bin/scim2 --url "$daemon_base" test >"$output" 2>&1 || status=$?
  cat "$output"
  echo "scim2-tester checks by status:"
  grep -oE '^(SUCCESS|COMPLIANT|ACCEPTABLE|DEVIATION|ERROR|CRITICAL|SKIPPED) ' "$output" |
    sort | uniq -c || echo "  (no check ran)"
  if ((status == 0)); then
    pass "scim2-tester: $(grep -c '^SUCCESS ' "$output") checks succeeded"
  else
    fail "scim2-tester (scim2 test exited $status)"
    show_log_tail scim2-tester
  fi
  stop_daemon scim2-tester
}

run_cases() {
  local status=0
  heading "run-cases.py on tests/cases and tests/cases/regression"
  start_daemon cases || { fail "run-cases: daemon start"; return; }
  JUDGES_TOKEN="$daemon_token" python3 tests/replay/run-cases.py --cacert "$daemon_cert" \
    "$daemon_base" - tests/cases || status=$?
  JUDGES_TOKEN="$daemon_token" python3 tests/replay/run-cases.py --cacert "$daemon_cert" \
    "$daemon_base" - tests/cases/regression || status=$?
  if ((status == 0)); then
    pass "run-cases.py"
  else
    fail "run-cases.py (exit status $status)"
    show_log_tail cases
  fi
  stop_daemon cases
}

run_replay() {
  local idp=$1 status=0
  heading "idp-replay.py --idp $idp --users $REPLAY_USERS --groups $REPLAY_GROUPS"
  start_daemon "replay-$idp" || { fail "idp-replay $idp: daemon start"; return; }
  python3 tests/replay/idp-replay.py --idp "$idp" --url "$daemon_base" --token - \
    --cacert "$daemon_cert" --users "$REPLAY_USERS" --groups "$REPLAY_GROUPS" --quiet \
    <<<"$daemon_token" || status=$?
  if ((status == 0)); then
    pass "idp-replay $idp"
  else
    fail "idp-replay $idp (exit status $status)"
    show_log_tail "replay-$idp"
  fi
  stop_daemon "replay-$idp"
}

run_conformance() {
  heading "cargo build --release"
  if ! cargo build --release; then
    fail "cargo build --release"
    return
  fi
  binary="${CARGO_TARGET_DIR:-$top/target}/release/idpsync"

  heading "Python tools in .venv"
  if ! ensure_venv; then
    fail "pip install scim2-cli==$SCIM2_CLI_VERSION into .venv"
    return
  fi

  run_scim2_tester
  run_cases
  local idp
  for idp in entra entra-flagged okta; do
    run_replay "$idp"
  done
}

main() {
  local stages=("$@")
  if ((${#stages[@]} == 0)); then
    stages=(unit conformance)
  fi
  local stage
  for stage in "${stages[@]}"; do
    case $stage in
      unit) run_unit ;;
      conformance) run_conformance ;;
      *)
        echo "tests/run.sh: unknown stage '$stage' (expected unit or conformance)" >&2
        exit 2
        ;;
    esac
  done

  heading "summary"
  local line
  for line in "${passes[@]}"; do
    echo "PASS $line"
  done
  for line in "${failures[@]}"; do
    echo "FAIL $line"
  done
  if ((${#failures[@]} > 0)); then
    echo "tests/run.sh: ${#failures[@]} step(s) failed"
    exit 1
  fi
  echo "tests/run.sh: every step passed"
}

main "$@"
