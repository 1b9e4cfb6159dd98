#!/usr/bin/env python3
"""The SAM parameter values that correspond to a props file of the
construct: each prop is its parameter's name in camelCase (cdk/lib/props.ts),
and CloudFormation passes every value as a string.

Usage: sam_params.py PROPS_JSON OUT_JSON
"""
import json
import sys

# Props that are no SAM parameter: where the Cargo workspace is (SAM's
# CodeUri), which the parity check does not compare.
NOT_PARAMETERS = {"cargoManifestPath"}


def parameter_values(props):
    values = {}
    for prop, value in props.items():
        if prop in NOT_PARAMETERS:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        values[prop[0].upper() + prop[1:]] = str(value)
    return values


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        props = json.load(f)
    with open(sys.argv[2], "w") as f:
        json.dump(parameter_values(props), f, indent=1, sort_keys=True)
