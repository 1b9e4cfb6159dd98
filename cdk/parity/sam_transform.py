#!/usr/bin/env python3
"""Transform infra/template.yaml into plain CloudFormation with the official
SAM translator (what CloudFormation's AWS::Serverless-2016-10-31 transform
runs), so the parity check compares what SAM really deploys.

Usage: sam_transform.py TEMPLATE PARAMS_JSON OUT_JSON
PARAMS_JSON: {"ParameterName": "value", ...}; the same values the
comparison then evaluates the conditions with (CloudFormation hands the
stack's parameter values to the transform, too).
"""
import json
import os
import sys

# The translator reads the region of a boto3 session for its pseudo
# parameters; it does not call AWS.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from samtranslator.translator.transform import transform  # noqa: E402
from samtranslator.yaml_helper import yaml_parse  # noqa: E402


class NoManagedPolicies:
    """The template names no managed policy by name (only full ARNs, which
    the translator passes through), so the loader never needs IAM."""

    def load(self):
        return {}


def packaged(template):
    """What `sam deploy` hands CloudFormation: local CodeUri paths replaced
    by S3 locations (the parity check ignores where the code lies)."""
    template.setdefault("Globals", {}).setdefault("Function", {})["CodeUri"] = "s3://parity-placeholder/code.zip"
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"].pop("CodeUri", None)
    return template


def main(template_path, params_path, out_path):
    with open(template_path) as f:
        template = packaged(yaml_parse(f.read()))
    with open(params_path) as f:
        params = json.load(f)
    out = transform(template, params, NoManagedPolicies())
    with open(out_path, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True, default=str)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
