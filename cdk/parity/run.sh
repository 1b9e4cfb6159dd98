#!/usr/bin/env bash
# The parity check (issue 28): the CDK construct deploys what
# infra/template.yaml deploys. For each choice set in cdk/parity/choices/
# (props of the example app; the SAM parameters are the same values), it
# synthesizes the example app, transforms infra/template.yaml with SAM's own
# translator, compares the two (parity.py) and proves the comparison can
# fail (selftest.py). Outputs land in target/parity/<choice>/.
#
# Needs: target/ci-venv (.ci/run's installs: aws-sam-cli brings the
# translator) and cdk/node_modules (npm ci in cdk/).
#
# PARITY_EXAMPLE_TEMPLATE: a template already synthesized from the example
# app without props (CI's `npx cdk synth`, with bundling) to use for the
# example-app choice set instead of synthesizing it again.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
PARITY="$ROOT/cdk/parity"
PY="${PARITY_PYTHON:-$ROOT/target/ci-venv/bin/python}"
STACK=GenesysVaAnalytics
OUT="$ROOT/target/parity"

if ! "$PY" -c 'import samtranslator' 2>/dev/null; then
  echo "parity: $PY has no samtranslator; install .ci/run's tools (pip install aws-sam-cli) or set PARITY_PYTHON" >&2
  exit 1
fi

# The example app's template for one choice set. Bundling is skipped: the
# code's location is the one thing the comparison ignores.
synth() {
  local choice="$1" props="$2" dir="$3"
  if [ "$choice" = example-app ] && [ -n "${PARITY_EXAMPLE_TEMPLATE:-}" ]; then
    cp "$PARITY_EXAMPLE_TEMPLATE" "$dir/cdk.template.json"
    return
  fi
  local context=()
  # The example app's defaults need no props file (that is what they prove).
  [ "$choice" = example-app ] || context=(-c "props=$props")
  # The example app's environment overrides stay out: the choice set says all.
  (cd "$ROOT/cdk" && unset GENESYS_SECRET_ARN GENESYS_EVENT_SOURCE_NAME GENESYS_REGION &&
    npx cdk synth -q --no-notices "${context[@]}" -c bundling=false -o "$dir/cdk.out" "$STACK" >/dev/null)
  cp "$dir/cdk.out/$STACK.template.json" "$dir/cdk.template.json"
}

# Only this run's choice sets (CI lints every template found here).
rm -rf "$OUT"
status=0
for props in "$PARITY"/choices/*.json; do
  choice="$(basename "$props" .json)"
  dir="$OUT/$choice"
  mkdir -p "$dir"
  echo "-- parity: $choice ($(tr -d '\n ' < "$props"))"
  "$PY" "$PARITY/sam_params.py" "$props" "$dir/sam-params.json"
  "$PY" "$PARITY/sam_transform.py" "$ROOT/infra/template.yaml" "$dir/sam-params.json" "$dir/sam.template.json"
  synth "$choice" "$props" "$dir"
  "$PY" "$PARITY/parity.py" "$dir/sam.template.json" "$dir/sam-params.json" "$dir/cdk.template.json" || status=1
  "$PY" "$PARITY/selftest.py" "$dir/sam.template.json" "$dir/sam-params.json" "$dir/cdk.template.json" || status=1
done
exit "$status"
