#!/usr/bin/env python3
"""The parity check can fail: change ONE statement on ONE side and it must
report exactly that difference (issue 28).

Usage: selftest.py SAM_TRANSFORMED.json SAM_PARAMS.json [CDK.template.json]

1. Against a stand-in for the CDK template made from the SAM template the
   way CDK writes templates (other logical ids with aws:cdk:path metadata,
   Fn::Join instead of Fn::Sub, statements and actions in another order,
   one role's policy as a separate AWS::IAM::Policy, a CDKMetadata
   resource): no difference; then one action removed from one statement on
   the CDK side, and separately on the SAM side: exactly that difference.
2. With a real synthesized template: the same two mutations must add
   exactly one difference to whatever the pair reports already.
"""
import copy
import hashlib
import re
import sys

import parity

# The statement the mutations change: the token refresher's token items.
ROLE, SID = "TokenRefresherFunctionRole", "TokenItems"
EXPECTED_PATH = f"Resources.{ROLE}.Properties.Statements[Sid={SID}].Action:"


# ---------------------------------------------------------------------------
# A CDK-shaped copy of a template


def cdk_id(logical_id):
    digest = hashlib.md5(logical_id.encode()).hexdigest()[:8].upper()
    return f"Analytics{logical_id}{digest}"


def cdk_like(template):
    resources = template["Resources"]
    ids = {logical_id: cdk_id(logical_id) for logical_id in resources}
    out = copy.deepcopy(template)
    out["Resources"] = {}
    for logical_id, resource in resources.items():
        resource = rewrite(copy.deepcopy(resource), ids)
        checkov = resource.get("Metadata", {}).get("checkov")
        resource["Metadata"] = {"aws:cdk:path": f"GenesysVaAnalytics/Analytics/{logical_id}/Resource"}
        if checkov:
            resource["Metadata"]["checkov"] = checkov
        reverse_statements(resource)
        out["Resources"][ids[logical_id]] = resource
    split_policy(out, ids[ROLE], ROLE)
    out["Resources"]["CDKMetadata"] = {"Type": "AWS::CDK::Metadata", "Properties": {"Analytics": "v2:deflate64:x"}}
    out["Outputs"] = {cdk_id(name): rewrite(copy.deepcopy(o), ids) for name, o in template.get("Outputs", {}).items()}
    return out


def rewrite(node, ids):
    """References under the new ids, and every Fn::Sub as CDK's Fn::Join."""
    if isinstance(node, list):
        return [rewrite(item, ids) for item in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Ref"} and node["Ref"] in ids:
        return {"Ref": ids[node["Ref"]]}
    if set(node) == {"Fn::GetAtt"}:
        name, attribute = node["Fn::GetAtt"] if isinstance(node["Fn::GetAtt"], list) else node["Fn::GetAtt"].split(".", 1)
        return {"Fn::GetAtt": [ids.get(name, name), attribute]}
    if set(node) == {"Fn::Sub"} and isinstance(node["Fn::Sub"], str):
        return sub_as_join(node["Fn::Sub"], ids)
    if "DependsOn" in node:
        depends = node["DependsOn"] if isinstance(node["DependsOn"], list) else [node["DependsOn"]]
        node["DependsOn"] = [ids.get(d, d) for d in depends]
    return {key: rewrite(value, ids) for key, value in node.items()}


def sub_as_join(text, ids):
    parts = []
    for piece in re.split(r"(\$\{[^}]*\})", text):
        if not piece:
            continue
        if not piece.startswith("${"):
            parts.append(piece)
            continue
        name = piece[2:-1]
        if name.startswith("!"):
            parts.append("${" + name[1:] + "}")
        elif "." in name:
            resource, attribute = name.split(".", 1)
            parts.append({"Fn::GetAtt": [ids.get(resource, resource), attribute]})
        else:
            parts.append({"Ref": ids.get(name, name)})
    return {"Fn::Join": ["", parts]}


def reverse_statements(node):
    """Statements, actions and resources in reverse order: a set is a set."""
    if isinstance(node, list):
        for item in node:
            reverse_statements(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in ("Statement", "Action", "Resource") and isinstance(value, list):
                value.reverse()
            reverse_statements(value)


def split_policy(template, role_id, role_name):
    """The role's inline policies as one AWS::IAM::Policy, as CDK grants."""
    role = template["Resources"][role_id]["Properties"]
    statements = [s for p in role.pop("Policies") for s in p["PolicyDocument"]["Statement"]]
    template["Resources"][role_id + "DefaultPolicy"] = {
        "Type": "AWS::IAM::Policy",
        "Metadata": {"aws:cdk:path": f"GenesysVaAnalytics/Analytics/{role_name}/DefaultPolicy/Resource"},
        "Properties": {
            "PolicyName": "DefaultPolicy",
            "Roles": [{"Ref": role_id}],
            "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
        },
    }


# ---------------------------------------------------------------------------
# The mutation: one action removed from one statement


def remove_one_action(template, sid=SID):
    """Removes the last action of the IAM statement with this Sid in the
    role named ROLE (inline or in an attached AWS::IAM::Policy)."""
    for logical_id, resource in template["Resources"].items():
        if not role_or_its_policy(logical_id, resource):
            continue
        for statement in statements_of(resource):
            if isinstance(statement, dict) and statement.get("Sid") == sid and isinstance(statement.get("Action"), list):
                return statement["Action"].pop()
    raise SystemExit(f"selftest: no statement {sid} with a list of actions in {ROLE}")


def role_or_its_policy(logical_id, resource):
    path = resource.get("Metadata", {}).get("aws:cdk:path", logical_id)
    if resource["Type"] == "AWS::IAM::Role":
        return parity.cdk_name(logical_id, resource) == ROLE
    if resource["Type"] == "AWS::IAM::Policy":
        return f"/{ROLE}/" in path or ROLE in str(resource["Properties"].get("Roles"))
    return False


def statements_of(resource):
    props = resource["Properties"]
    documents = [p["PolicyDocument"] for p in props.get("Policies", [])]
    if "PolicyDocument" in props:
        documents.append(props["PolicyDocument"])
    return [s for d in documents for s in d.get("Statement", [])]


# ---------------------------------------------------------------------------


def check(name, baseline, lines):
    new = [line for line in lines if line not in baseline]
    gone = [line for line in baseline if line not in lines]
    ok = len(new) == 1 and not gone and new[0].startswith(EXPECTED_PATH)
    print(f"selftest {name}: {'ok' if ok else 'FAILED'}")
    for line in new:
        print(f"  reported: {line}")
    for line in gone:
        print(f"  no longer reported: {line}")
    return ok


def mutations(sam, params, cdk, cdk_params):
    """Both one-sided mutations against a pair; True if each is caught."""
    baseline = parity.parity(sam, params, cdk, cdk_params)
    ok = True
    changed = copy.deepcopy(cdk)
    action = remove_one_action(changed)
    ok &= check(f"CDK side without {action} in {ROLE} {SID}", baseline, parity.parity(sam, params, changed, cdk_params))
    changed = copy.deepcopy(sam)
    action = remove_one_action(changed)
    ok &= check(f"SAM side without {action} in {ROLE} {SID}", baseline, parity.parity(changed, params, cdk, cdk_params))
    return ok


def main(argv):
    if len(argv) not in (3, 4):
        sys.exit(__doc__)
    sam, params = parity.load(argv[1]), parity.load(argv[2])
    stand_in = cdk_like(sam)
    identical = parity.parity(sam, params, stand_in, params)
    print(f"selftest CDK-shaped copy of the SAM template: {'ok, no difference' if not identical else 'FAILED'}")
    for line in identical:
        print(f"  {line}")
    ok = not identical and mutations(sam, params, stand_in, params)
    if len(argv) == 4:
        print(f"selftest with {argv[3]}:")
        ok &= mutations(sam, params, parity.load(argv[3]), None)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
