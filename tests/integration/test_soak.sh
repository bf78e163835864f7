# The soak's short version (make soak runs 200; the suite's time allows 6): migrations of the blank,
# video and memory services with random strategies and injected failures;
# after each, one copy runs with its state, and nothing accumulates on the
# hosts (tests/soak.sh says what is counted).
set -euo pipefail
exec bash "$(dirname "$0")/../soak.sh" --count 6 --seed 11
