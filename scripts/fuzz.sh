#!/usr/bin/env bash
# Runs every Fuzz* target in the repository for the given time each
# (default 30s). A crash fails the run; the failing input lands in the
# package's testdata/fuzz/ as Go's fuzzer writes it.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-30s}
status=0
count=0
while IFS= read -r file; do
	pkg=./$(dirname "$file")
	for target in $(grep -oE '^func (Fuzz[A-Za-z0-9_]+)\(' "$file" | sed -E 's/^func (Fuzz[A-Za-z0-9_]+)\(/\1/'); do
		count=$((count + 1))
		echo "== fuzz $pkg $target ($fuzztime)"
		if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"; then
			echo "FAIL: fuzz $pkg $target" >&2
			status=1
		fi
	done
done < <(git ls-files --cached --others --exclude-standard -- '*_test.go' | xargs grep -l '^func Fuzz' | sort)
echo "fuzz: ran $count targets"
exit $status
