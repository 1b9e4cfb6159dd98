#!/usr/bin/env python3
"""Parity check: the CDK construct's synthesized template deploys what
infra/template.yaml deploys (issue 28: "one truth, not two").

Usage: parity.py SAM_TRANSFORMED.json SAM_PARAMS.json CDK.template.json

SAM_TRANSFORMED.json is infra/template.yaml after the SAM transform
(sam_transform.py, with the same parameter values); SAM_PARAMS.json holds
the parameter values that correspond to the props the CDK template was
synthesized with. Both templates are reduced to one canonical form (below)
and compared; every difference is printed as `path: sam X vs cdk Y` and the
exit status is 1 if there is any.

The canonical form:
- the SAM side's parameters, mappings and conditions are evaluated with
  the given values (the construct resolves them at synth time), resources
  and outputs whose condition is false are dropped, Fn::If picks its branch
  and AWS::NoValue disappears;
- a resource is named by its SAM logical id; on the CDK side that is the
  last segment of its `aws:cdk:path` (a trailing `/Resource` ignored: the
  construct gives each child the SAM logical id as its construct id);
- Ref/GetAtt of a resource become `{{Ref:Name}}` / `{{GetAtt:Name.Attr}}`,
  pseudo parameters `{{AWS::Region}}` and so on; Fn::Sub and Fn::Join of
  known pieces become one plain string, so `!Sub arn:${AWS::Partition}:...`
  and CDK's `Fn::Join ["", ["arn:", {"Ref": "AWS::Partition"}, ...]]`
  compare equal;
- numbers and booleans become strings (CloudFormation passes "256" and 256
  alike);
- IAM statements are sets: order-insensitive, and so are their Action,
  Resource and Principal lists and condition values; a role's statements
  are the union of its inline policies and the AWS::IAM::Policy resources
  attached to it (CDK grants add those; SAM writes inline policies: the
  same permissions);
- lists of keyed items (Tags by Key, Dimensions by Name, Targets by Id,
  AttributeDefinitions by AttributeName, ...) are sets in CloudFormation
  and are sorted by their key.
"""
import json
import re
import sys

# ---------------------------------------------------------------------------
# What must differ, and why. Everything else is compared.

# Resource types only one side has by construction.
IGNORED_TYPES = {
    # CDK's version report (analytics), no product resource.
    "AWS::CDK::Metadata": "CDK's version analytics resource, no product resource",
}

# Properties ignored per resource type.
IGNORED_PROPERTIES = {
    # The code's location: SAM uploads CodeUri to its own bucket, CDK the
    # cargo-lambda asset to the bootstrap bucket. Both are the same crates'
    # arm64 release binaries (cargo lambda); which object holds them differs.
    "AWS::Lambda::Function": {"Code"},
}

# Tags a tool adds to mark what it made; nothing reads them.
TOOL_TAGS = {"lambda:createdBy", "httpapi:createdBy"}

# Resource attributes ignored on both sides:
# - Metadata: aws:cdk:path and asset paths (CDK), SamResourceId and the
#   cargo-lambda build settings (SAM); none of it deploys anything. Its
#   checkov skips are compared (as "CheckovSkips", each id with its
#   comment), so a check skipped on one side only fails, except on SAM's
#   EventInvokeConfig, which gets a copy of its function's Metadata;
# - DependsOn: creation order only; each side orders what its references
#   do not (SAM a function after its role, CDK also after the role's
#   default policy);
# - Condition: already evaluated (a resource whose condition is false is
#   dropped; an unconditional twin is the same resource).
COMPARED_ATTRIBUTES = ("Type", "Properties", "DeletionPolicy", "UpdateReplacePolicy", "UpdatePolicy")

# Template sections not compared directly: Parameters, Mappings, Conditions
# are consumed by the evaluation (the construct has typed props instead);
# Rules are SAM's parameter assertions, the construct validates props at
# synth time (the check asserts each choice set satisfies them, below);
# CDK's BootstrapVersion parameter and CheckBootstrapVersion rule only check
# the bootstrap stack's version; Description/Metadata deploy nothing.

# Keys that identify the items of a list CloudFormation treats as a set.
LIST_ITEM_KEYS = ("Key", "Name", "Id", "AttributeName", "IndexName", "PolicyName", "KeyType")

# Policy documents anywhere in a resource's properties.
POLICY_DOCUMENT_KEYS = {"PolicyDocument", "KeyPolicy", "AssumeRolePolicyDocument"}

PSEUDO_PARAMETERS = {
    "AWS::AccountId", "AWS::Partition", "AWS::Region", "AWS::StackId",
    "AWS::StackName", "AWS::URLSuffix", "AWS::NotificationARNs",
}

NO_VALUE = object()  # AWS::NoValue: the key or list item disappears


class Unresolvable(Exception):
    pass


# ---------------------------------------------------------------------------
# Evaluation of intrinsic functions


class Evaluator:
    """Evaluates one template's intrinsics with fixed parameter values.

    names maps each logical id to its canonical name (the SAM logical id).
    """

    def __init__(self, template, params, names):
        self.template = template
        self.names = names
        self.params = self._parameter_values(template.get("Parameters", {}), params)
        self.conditions = template.get("Conditions", {})
        self.mappings = template.get("Mappings", {})
        self._condition_cache = {}

    @staticmethod
    def _parameter_values(declared, given):
        values = {}
        for name, spec in declared.items():
            if name in given:
                values[name] = scalar(given[name])
            elif "Default" in spec:
                values[name] = scalar(spec["Default"])
        unknown = set(given) - set(declared)
        if unknown:
            raise Unresolvable(f"values for undeclared parameters: {sorted(unknown)}")
        return values

    def condition(self, name):
        if name not in self._condition_cache:
            if name not in self.conditions:
                raise Unresolvable(f"unknown condition {name}")
            self._condition_cache[name] = self.truth(self.conditions[name])
        return self._condition_cache[name]

    def truth(self, node):
        """A condition expression's value."""
        if isinstance(node, dict) and len(node) == 1:
            (fn, args), = node.items()
            if fn == "Condition":
                return self.condition(args)
            if fn == "Fn::Equals":
                left, right = (self.value(a) for a in args)
                if is_symbolic(left) or is_symbolic(right):
                    raise Unresolvable(f"condition on a deploy-time value: {node}")
                return left == right
            if fn == "Fn::Not":
                return not self.truth(args[0])
            if fn == "Fn::And":
                return all(self.truth(a) for a in args)
            if fn == "Fn::Or":
                return any(self.truth(a) for a in args)
        raise Unresolvable(f"not a condition: {node}")

    def value(self, node):
        """A property value with every intrinsic evaluated or canonical."""
        if isinstance(node, list):
            items = (self.value(item) for item in node)
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(node, dict):
            return scalar(node)
        if len(node) == 1:
            (key, args), = node.items()
            handler = self.FUNCTIONS.get(key)
            if handler:
                return handler(self, args)
        out = {}
        for key, item in node.items():
            item = self.value(item)
            if item is not NO_VALUE:
                out[key] = item
        return out

    # Each intrinsic function -------------------------------------------

    def _ref(self, name):
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in PSEUDO_PARAMETERS:
            return "{{%s}}" % name
        if name in self.params:
            return self.params[name]
        if name in self.names:
            return "{{Ref:%s}}" % self.names[name]
        raise Unresolvable(f"Ref to unknown {name}")

    def _get_att(self, args):
        if isinstance(args, str):
            args = args.split(".", 1)
        resource, attribute = args[0], self.value(args[1])
        if resource not in self.names:
            raise Unresolvable(f"GetAtt of unknown {resource}")
        return "{{GetAtt:%s.%s}}" % (self.names[resource], attribute)

    def _if(self, args):
        name, then, otherwise = args
        return self.value(then if self.condition(name) else otherwise)

    def _find_in_map(self, args):
        mapping, key, attribute = (self.value(a) for a in args)
        return self.value(self.mappings[mapping][key][attribute])

    def _sub(self, args):
        if isinstance(args, list):
            text, variables = args[0], {k: self.value(v) for k, v in args[1].items()}
        else:
            text, variables = args, {}

        def replace(match):
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return as_text(variables[name])
            if "." in name and name.split(".", 1)[0] in self.names:
                return self._get_att(name)
            return as_text(self._ref(name))

        return re.sub(r"\$\{([^}]*)\}", replace, text)

    def _join(self, args):
        delimiter, items = args[0], self.value(args[1])
        if isinstance(items, list) and all(isinstance(i, str) for i in items):
            return delimiter.join(items)
        return {"Fn::Join": [delimiter, items]}

    def _select(self, args):
        index, items = self.value(args[0]), self.value(args[1])
        if isinstance(items, list) and not is_symbolic(index):
            return items[int(index)]
        return {"Fn::Select": [index, items]}

    def _split(self, args):
        delimiter, text = args[0], self.value(args[1])
        if isinstance(text, str):
            return text.split(delimiter)
        return {"Fn::Split": [delimiter, text]}

    def _symbolic(name):
        """Functions only CloudFormation can evaluate stay as they are."""
        return lambda self, args: {name: self.value(args)}

    FUNCTIONS = {
        "Ref": lambda self, args: self._ref(args),
        "Fn::GetAtt": _get_att,
        "Fn::If": _if,
        "Fn::FindInMap": _find_in_map,
        "Fn::Sub": _sub,
        "Fn::Join": _join,
        "Fn::Select": _select,
        "Fn::Split": _split,
        "Fn::GetAZs": _symbolic("Fn::GetAZs"),
        "Fn::ImportValue": _symbolic("Fn::ImportValue"),
        "Fn::Base64": _symbolic("Fn::Base64"),
        "Fn::Cidr": _symbolic("Fn::Cidr"),
    }


def scalar(value):
    """CloudFormation passes every scalar as a string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(int(value)) if float(value).is_integer() else str(value)
    return value


def is_symbolic(value):
    return not isinstance(value, str) or "{{" in value


def as_text(value):
    if isinstance(value, str):
        return value
    return "{{" + json.dumps(value, sort_keys=True) + "}}"


# ---------------------------------------------------------------------------
# Canonical names


def sam_names(template):
    return {logical_id: logical_id for logical_id in template.get("Resources", {})}


def cdk_name(logical_id, resource):
    """The construct id under the construct: the SAM logical id."""
    path = resource.get("Metadata", {}).get("aws:cdk:path")
    if not path:
        return logical_id
    segments = path.split("/")
    if segments[-1] == "Resource" and len(segments) > 1:
        segments = segments[:-1]
    return segments[-1]


def cdk_names(template):
    names, seen = {}, {}
    for logical_id, resource in template.get("Resources", {}).items():
        name = cdk_name(logical_id, resource)
        if name in seen:
            # Two constructs with one id (e.g. two L2s' "ServiceRole"): keep
            # the logical ids, so both show up as unmatched, not merged.
            names[seen[name]] = seen[name]
            name = logical_id
        seen[name] = logical_id
        names[logical_id] = name
    return names


def output_name(logical_id, sam_outputs):
    """A CDK output's SAM name: an output made under the construct gets a
    hash suffix and the construct path as prefix."""
    if logical_id in sam_outputs:
        return logical_id
    stripped = re.sub(r"[0-9A-F]{8}$", "", logical_id)
    matches = [name for name in sam_outputs if stripped.endswith(name)]
    return max(matches, key=len) if matches else logical_id


# ---------------------------------------------------------------------------
# Reduction of a template to its canonical form


def reduce_template(template, params, names, output_names=None):
    ev = Evaluator(template, params, names)
    resources = {}
    for logical_id, resource in template.get("Resources", {}).items():
        if resource["Type"] in IGNORED_TYPES:
            continue
        if "Condition" in resource and not ev.condition(resource["Condition"]):
            continue
        resources[names[logical_id]] = reduce_resource(ev, resource)
    fold_policies_into_roles(resources)
    outputs = {}
    for logical_id, output in template.get("Outputs", {}).items():
        if "Condition" in output and not ev.condition(output["Condition"]):
            continue
        name = output_names(logical_id) if output_names else logical_id
        outputs[name] = canonical(ev.value({k: v for k, v in output.items() if k != "Condition"}))
    return {"Resources": resources, "Outputs": outputs}


def reduce_resource(ev, resource):
    out = {}
    for attribute in COMPARED_ATTRIBUTES:
        if attribute in resource:
            out[attribute] = ev.value(resource[attribute])
    skips = resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    if skips and resource["Type"] != "AWS::Lambda::EventInvokeConfig":
        out["CheckovSkips"] = {skip["id"]: skip.get("comment") for skip in skips}
    props = out.get("Properties", {})
    for name in IGNORED_PROPERTIES.get(resource["Type"], ()):
        props.pop(name, None)
    drop_tool_tags(props)
    drop_tool_tags(props.get("Body", {}))
    aws_partition_as_pseudo(props)
    return canonical(out)


def aws_partition_as_pseudo(props):
    """SAM's translator writes the AWS managed policies' ARNs with the
    partition of the region it runs in (arn:aws:...); CloudFormation's
    transform does the same in each partition, so it is AWS::Partition."""
    arns = props.get("ManagedPolicyArns")
    if isinstance(arns, list):
        props["ManagedPolicyArns"] = [
            a.replace("arn:aws:", "arn:{{AWS::Partition}}:", 1) if isinstance(a, str) else a for a in arns
        ]


def drop_tool_tags(props):
    """Tags (or an OpenAPI body's tags) without the tools' own markers."""
    key = "Tags" if "Tags" in props else "tags"
    tags = props.get(key)
    if isinstance(tags, list):
        props[key] = [t for t in tags if not (isinstance(t, dict) and (t.get("Key") or t.get("name")) in TOOL_TAGS)]
        if not props[key]:
            del props[key]
    elif isinstance(tags, dict):
        for tag in TOOL_TAGS:
            tags.pop(tag, None)
        if not tags:
            del props[key]


def fold_policies_into_roles(resources):
    """A role's permissions: its inline policies and the AWS::IAM::Policy
    resources attached to it, as one statement set (names do not matter)."""
    roles = {name: r for name, r in resources.items() if r["Type"] == "AWS::IAM::Role"}
    for role in roles.values():
        props = role.setdefault("Properties", {})
        statements = []
        for policy in props.pop("Policies", []):
            statements += policy["PolicyDocument"].get("Statement", [])
        props["Statements"] = statements
    for name, resource in list(resources.items()):
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        props = resource["Properties"]
        attached = [r[len("{{Ref:"):-2] for r in props.get("Roles", []) if r.startswith("{{Ref:")]
        if props.keys() - {"Roles", "PolicyDocument", "PolicyName"} or not attached:
            continue  # attached to users or groups too: compared as it is
        if not all(role in roles for role in attached):
            continue
        for role in attached:
            roles[role]["Properties"]["Statements"] += props["PolicyDocument"].get("Statement", [])
        del resources[name]
    for role in roles.values():
        role["Properties"]["Statements"] = statement_set(role["Properties"]["Statements"])


# ---------------------------------------------------------------------------
# Canonical values


def canonical(value, key=None):
    if isinstance(value, dict):
        if key in POLICY_DOCUMENT_KEYS:
            return canonical_policy(value)
        return {k: canonical(v, k) for k, v in sorted(value.items())}
    if isinstance(value, list):
        items = [canonical(v) for v in value]
        item_key = list_item_key(items)
        if item_key:
            return sorted(items, key=lambda i: str(i[item_key]))
        return items
    return value


def list_item_key(items):
    if not items or not all(isinstance(i, dict) for i in items):
        return None
    for key in LIST_ITEM_KEYS:
        if all(key in i for i in items) and len({str(i[key]) for i in items}) == len(items):
            return key
    return None


def canonical_policy(document):
    document = dict(document)
    document["Statement"] = statement_set(document.get("Statement", []))
    return document


def statement_set(statements):
    if isinstance(statements, dict):
        statements = [statements]
    unique = {json.dumps(s, sort_keys=True): s for s in map(canonical_statement, statements)}
    return [unique[k] for k in sorted(unique)]


def canonical_statement(statement):
    out = {}
    for key, value in statement.items():
        if key in ("Action", "NotAction", "Resource", "NotResource"):
            out[key] = as_set(value)
        elif key in ("Principal", "NotPrincipal") and isinstance(value, dict):
            out[key] = {k: as_set(v) for k, v in sorted(value.items())}
        elif key == "Condition":
            out[key] = {op: {k: as_set(v) for k, v in sorted(keys.items())}
                        for op, keys in sorted(value.items())}
        else:
            out[key] = value
    return out


def as_set(value):
    values = value if isinstance(value, list) else [value]
    return sorted({json.dumps(v, sort_keys=True) if not isinstance(v, str) else v for v in values})


# ---------------------------------------------------------------------------
# Comparison


def compare(sam, cdk):
    """Every difference as a line `path: sam X vs cdk Y`."""
    lines = []
    compare_resources(sam["Resources"], cdk["Resources"], lines)
    compare_keyed("Outputs", sam["Outputs"], cdk["Outputs"], lines)
    return lines


def compare_resources(sam, cdk, lines):
    for name in sorted(sam.keys() | cdk.keys()):
        path = f"Resources.{name}"
        if name not in cdk:
            lines.append(f"{path}: sam {sam[name]['Type']} vs cdk (missing)")
        elif name not in sam:
            lines.append(f"{path}: sam (missing) vs cdk {cdk[name]['Type']}")
        else:
            diff(path, sam[name], cdk[name], lines)


def compare_keyed(section, sam, cdk, lines):
    for name in sorted(sam.keys() | cdk.keys()):
        diff(f"{section}.{name}", sam.get(name, MISSING), cdk.get(name, MISSING), lines)


MISSING = "(missing)"


def diff(path, sam, cdk, lines):
    if sam == cdk:
        return
    if isinstance(sam, dict) and isinstance(cdk, dict):
        for key in sorted(sam.keys() | cdk.keys()):
            diff(f"{path}.{key}", sam.get(key, MISSING), cdk.get(key, MISSING), lines)
    elif path.endswith((".Statement", ".Statements")) and isinstance(sam, list) and isinstance(cdk, list):
        diff_statements(path, sam, cdk, lines)
    elif isinstance(sam, list) and isinstance(cdk, list) and len(sam) == len(cdk):
        for index, (a, b) in enumerate(zip(sam, cdk)):
            diff(f"{path}[{index}]", a, b, lines)
    else:
        lines.append(f"{path}: sam {show(sam)} vs cdk {show(cdk)}")


def diff_statements(path, sam, cdk, lines):
    """Statements are a set: pair them by Sid, then report the rest whole."""
    sam_left = [s for s in sam if s not in cdk]
    cdk_left = [s for s in cdk if s not in sam]
    sam_by_sid = {s["Sid"]: s for s in sam_left if "Sid" in s}
    for statement in list(cdk_left):
        sid = statement.get("Sid")
        if sid in sam_by_sid:
            diff(f"{path}[Sid={sid}]", sam_by_sid.pop(sid), statement, lines)
            cdk_left.remove(statement)
    unmatched_sam = [s for s in sam_left if "Sid" not in s or s["Sid"] in sam_by_sid]
    if len(unmatched_sam) == 1 and len(cdk_left) == 1 and "Sid" not in unmatched_sam[0] and "Sid" not in cdk_left[0]:
        # One statement without a Sid on each side: the same one, changed.
        diff(f"{path}[no Sid]", unmatched_sam.pop(), cdk_left.pop(), lines)
    for statement in unmatched_sam:
        lines.append(f"{path}[{statement_label(statement)}]: sam {show(statement)} vs cdk (missing)")
    for statement in cdk_left:
        lines.append(f"{path}[{statement_label(statement)}]: sam (missing) vs cdk {show(statement)}")


def statement_label(statement):
    return f"Sid={statement['Sid']}" if "Sid" in statement else "no Sid"


def show(value):
    return value if value == MISSING else json.dumps(value, sort_keys=True)


# ---------------------------------------------------------------------------
# SAM's Rules: the choice set must be one SAM accepts


def check_rules(template, params, names):
    ev = Evaluator(template, params, names)
    failures = []
    for name, rule in template.get("Rules", {}).items():
        if "RuleCondition" in rule and not ev.truth(rule["RuleCondition"]):
            continue
        for assertion in rule.get("Assertions", []):
            if not ev.truth(assertion["Assert"]):
                failures.append(f"Rules.{name}: {assertion.get('AssertDescription', assertion)}")
    return failures


def parity(sam_template, params, cdk_template, cdk_params=None):
    """The differences between the two templates (a list of lines).

    cdk_params: only for the self-test, whose stand-in for the CDK template
    is a SAM template (the construct's own template has no parameters but
    CDK's BootstrapVersion)."""
    failures = check_rules(sam_template, params, sam_names(sam_template))
    if failures:
        return ["the parameter values break the SAM template's Rules: " + f for f in failures]
    sam = reduce_template(sam_template, params, sam_names(sam_template))
    sam_outputs = sam["Outputs"].keys()
    cdk = reduce_template(cdk_template, cdk_params or {}, cdk_names(cdk_template),
                          lambda logical_id: output_name(logical_id, sam_outputs))
    return compare(sam, cdk)


def load(path):
    with open(path) as f:
        return json.load(f)


def main(argv):
    if len(argv) != 4:
        sys.exit(__doc__)
    sam_template, params, cdk_template = (load(p) for p in argv[1:])
    try:
        lines = parity(sam_template, params, cdk_template)
    except Unresolvable as error:
        print(f"parity: cannot evaluate the templates: {error}", file=sys.stderr)
        return 2
    for line in lines:
        print(line)
    if lines:
        print(f"{len(lines)} difference(s) between {argv[1]} and {argv[3]}", file=sys.stderr)
        return 1
    print(f"no difference: {argv[3]} deploys what {argv[1]} deploys")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
