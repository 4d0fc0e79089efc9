"""Static checks of template.yaml: what `sam validate --lint` cannot know and a deploy would not reveal.

cfn-lint checks the CloudFormation schema; these tests check regcred's own rules: Secrets Manager may
invoke the rotation function (and only for this account), every secret permission is scoped to the
tagged secrets, the handlers and the layer exist on disk, the layer does not bundle boto3 and serves every
Runtime the functions may get (its Makefile's merge of the per-runtime trees is run on made-up trees), the
production template declares no emulator endpoint (its development copy does). For the
remediation: the rules match the failure events, nothing EventBridge or Lambda gives up on is lost
(dead-letter queues, alarms on them), and each permission stays as narrow as its API allows. For the
sweep: its schedule, fan-out queue and event source carry the parameters, its environment and IAM are
the ones the code expects. Every alarm notifies the topic both ways and names a runbook that exists in
the README; the dashboard is valid JSON and shows only metrics the code emits. The deployment hardening
parameters are off by default and their conditions switch what they should.
"""

from __future__ import annotations

import ast
import base64
import copy
import csv
import hashlib
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from devstack import sam_template
from devstack.cfn import load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
LAYER_MAKEFILE = ROOT / "layers" / "regcred" / "Makefile"

README = ROOT / "README.md"
SWEEP_EVENT = ROOT / "events" / "sweep_schedule.json"

ROTATE = "RotateFunction"
ROTATE_PERMISSION = "RotateFunctionInvokePermission"
REMEDIATE = "RemediateFunction"
SWEEP = "SweepFunction"
FUNCTIONS = {ROTATE, REMEDIATE, SWEEP}
EVENTS_DLQ = "EventsDeadLetterQueue"
REMEDIATION_QUEUE = "RemediationQueue"
REMEDIATION_DLQ = "RemediationDeadLetterQueue"
SWEEP_QUEUE = "SweepQueue"
SWEEP_DLQ = "SweepDeadLetterQueue"
SCHEDULE_DLQ = "SweepScheduleDeadLetterQueue"
DEAD_LETTER_QUEUES = {EVENTS_DLQ, REMEDIATION_DLQ, SWEEP_DLQ, SCHEDULE_DLQ}
# The queues functions take work from: queue -> (function, its dead-letter queue, maxReceiveCount).
WORK_QUEUES = {SWEEP_QUEUE: (SWEEP, SWEEP_DLQ, 3), REMEDIATION_QUEUE: (REMEDIATE, REMEDIATION_DLQ, 5)}
SCHEDULE = "SweepSchedule"
SCHEDULE_ROLE = "SweepScheduleRole"
SWEEP_EVENT_SOURCE = "SweepQueueEventSource"
REMEDIATION_EVENT_SOURCE = "RemediationQueueEventSource"
REMEDIATION_RULES = {"BatchJobFailedRule", "EcsTaskFailedToStartRule", "RotationEventsRule"}
DASHBOARD = "RegcredDashboard"
SECRETS_KEY = "ManagedSecretsKmsKey"
COALESCE_TABLE = "CoalesceTable"
TOPIC = "NotificationTopic"
RESUBMIT_CONDITION = "ResubmitJobsEnabled"
RULE_RETRY_POLICY = {"MaximumRetryAttempts": 4, "MaximumEventAgeInSeconds": 3600}

# Actions IAM only grants on Resource "*": they act on no resource, or the service has no
# resource-level permissions for them. Anything else on "*" is a mistake.
STAR_RESOURCE_ACTIONS = {
    "secretsmanager:GetRandomPassword",
    "secretsmanager:ListSecrets",
    "batch:DescribeJobDefinitions",
    "batch:DescribeJobs",
    "batch:DescribeJobQueues",
    "batch:ListJobs",
    "ecs:DescribeTaskDefinition",
    "cloudwatch:PutMetricData",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
}
MANAGED_TAG = "secretsmanager:ResourceTag/regcred:managed"
ADMIN_TAG = "secretsmanager:ResourceTag/regcred:admin"
# What a role may do with an admin secret (the vendor's administrative credential): read it, no more.
ADMIN_SECRET_ACTIONS = {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}
# KMS actions that use a key's material; only ever through these services.
KMS_KEY_USE = re.compile(r"kms:(Decrypt|Encrypt|GenerateDataKey.*|ReEncrypt.*)$")
KMS_VIA_SERVICES = {
    json.dumps({"Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"}),
    json.dumps({"Fn::Sub": "sns.${AWS::Region}.amazonaws.com"}),
}
# KMS actions that touch no key material.
KMS_METADATA_ACTIONS = {"kms:DescribeKey", "kms:GetKeyPolicy"}
# The ECR pull-through cache mirror (regcred:ecr-mirror): the only secrets outside the managed/admin tags
# a function may touch, by name prefix, bound by their regcred:mirror-of tag; read and written, no more.
MIRROR_OF_TAG = "secretsmanager:ResourceTag/regcred:mirror-of"
MIRROR_RESOURCE = (
    "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:ecr-pullthroughcache/*"
)
MIRROR_ACTIONS = {
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetSecretValue",
    "secretsmanager:PutSecretValue",
}
# What AWSLambdaVPCAccessExecutionRole grants beyond logging (AWS managed policy reference, v3).
VPC_ENI_ACTIONS = {
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def _resources(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == type_}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _function_property(template: dict[str, Any], function: dict[str, Any], key: str) -> Any:
    """A function's property, falling back to Globals.Function as SAM does."""
    props = function["Properties"]
    if key in props:
        return props[key]
    return template.get("Globals", {}).get("Function", {}).get(key)


def _function_env(template: dict[str, Any], function: dict[str, Any]) -> dict[str, Any]:
    glob = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    own = function["Properties"].get("Environment", {}).get("Variables", {})
    return {**glob, **own}


def _is_no_value(value: Any) -> bool:
    return bool(value == {"Ref": "AWS::NoValue"})


def _conditional_statements(template: dict[str, Any]) -> list[tuple[str, dict[str, Any], str | None]]:
    """Every inline IAM statement of the template, with its owner's logical id and the condition it is
    under (a statement written as !If [Condition, statement, AWS::NoValue]), or None."""
    found: list[tuple[str, dict[str, Any], str | None]] = []
    for name, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        documents: list[Any] = []
        if resource["Type"] == "AWS::Serverless::Function":
            documents = [p for p in _as_list(props.get("Policies", [])) if isinstance(p, dict)]
        elif resource["Type"] == "AWS::IAM::Role":
            documents = [p["PolicyDocument"] for p in props.get("Policies", [])]
        elif resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents = [props["PolicyDocument"]]
        for document in documents:
            for statement in _as_list(document.get("Statement", [])):
                if "Fn::If" not in statement:
                    found.append((name, statement, None))
                    continue
                condition, if_true, if_false = statement["Fn::If"]
                assert _is_no_value(if_false), f"{name}: write conditional statements as !If [C, S, NoValue]"
                found.append((name, if_true, condition))
    return found


def _statements(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every inline IAM statement of the template (conditional ones included), with its owner."""
    return [(owner, statement) for owner, statement, _ in _conditional_statements(template)]


def _granting(template: dict[str, Any], action: str) -> list[tuple[str, dict[str, Any]]]:
    """The Allow statements that grant ``action``."""
    return [
        (owner, s)
        for owner, s in _statements(template)
        if s["Effect"] == "Allow" and action in _as_list(s["Action"])
    ]


def _rules(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return _resources(template, "AWS::Events::Rule")


def _resource_text(resource: Any) -> str:
    """An IAM Resource as text: a literal, or the template string of an !Sub."""
    if isinstance(resource, str):
        return resource
    if isinstance(resource, dict) and "Fn::Sub" in resource:
        sub = resource["Fn::Sub"]
        return sub if isinstance(sub, str) else sub[0]
    return json.dumps(resource)


def _conditions(statement: dict[str, Any], operator: str) -> dict[str, Any]:
    return dict(statement.get("Condition", {}).get(operator, {}))


def test_template_parses_with_short_form_tags(template: dict[str, Any]) -> None:
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    assert template["Outputs"]["RotateFunctionArn"]["Value"] == {"Fn::GetAtt": [ROTATE, "Arn"]}


def test_runtime_parameter(template: dict[str, Any]) -> None:
    runtime = template["Parameters"]["Runtime"]
    assert runtime["Default"] == "python3.13"
    assert set(runtime["AllowedValues"]) == {"python3.11", "python3.12", "python3.13"}
    for name, function in _resources(template, "AWS::Serverless::Function").items():
        assert _function_property(template, function, "Runtime") == {"Ref": "Runtime"}, name


def _makefile_layer_pythons() -> list[str]:
    match = re.search(r"^LAYER_PYTHONS := (.+)$", LAYER_MAKEFILE.read_text(encoding="utf-8"), re.M)
    assert match, "layers/regcred/Makefile sets no LAYER_PYTHONS"
    return [f"python{v}" for v in match.group(1).split()]


def test_layer_is_built_for_every_runtime_the_functions_may_get(template: dict[str, Any]) -> None:
    # Build and deploy may take the functions' Runtime from different places (command line,
    # samconfig.toml, the default), and SAM never tells the layer's Makefile: the layer is built for
    # every allowed Runtime and declares them all, literally.
    allowed = template["Parameters"]["Runtime"]["AllowedValues"]
    compatible = template["Resources"]["RegcredLayer"]["Properties"]["CompatibleRuntimes"]
    assert all(isinstance(r, str) for r in compatible), compatible
    assert sorted(compatible) == sorted(allowed)
    assert sorted(_makefile_layer_pythons()) == sorted(allowed)
    assert template["Parameters"]["Runtime"]["Default"] in compatible


def test_rotation_permission_is_for_secrets_manager_of_this_account(template: dict[str, Any]) -> None:
    permission = template["Resources"][ROTATE_PERMISSION]
    assert permission["Type"] == "AWS::Lambda::Permission"
    props = permission["Properties"]
    assert props["FunctionName"] in ({"Fn::GetAtt": [ROTATE, "Arn"]}, {"Ref": ROTATE})
    assert props["Action"] == "lambda:InvokeFunction"
    assert props["Principal"] == "secretsmanager.amazonaws.com"
    assert props["SourceAccount"] == {"Ref": "AWS::AccountId"}


def test_rotation_schedules_use_the_function_after_the_permission(template: dict[str, Any]) -> None:
    schedules = _resources(template, "AWS::SecretsManager::RotationSchedule")
    assert schedules, "the example secret's rotation schedule is gone"
    for name, schedule in schedules.items():
        assert ROTATE_PERMISSION in _as_list(schedule.get("DependsOn", [])), name
        props = schedule["Properties"]
        assert props["RotationLambdaARN"] == {"Fn::GetAtt": [ROTATE, "Arn"]}, name
        assert props["RotationRules"]["ScheduleExpression"] == {"Ref": "RotationSchedule"}, name


def test_example_secret_is_managed_and_starts_readable(template: dict[str, Any]) -> None:
    secrets = _resources(template, "AWS::SecretsManager::Secret")
    assert secrets
    for name, secret in secrets.items():
        props = secret["Properties"]
        tags = {t["Key"]: t["Value"] for t in props["Tags"]}
        assert str(tags["regcred:managed"]).lower() == "true", name
        assert tags["regcred:provider"] == "dockerhub", name
        assert {"regcred:admin-secret", "regcred:images", "regcred:grace"} <= set(tags), name
        # ECS reads {"username","password"}: the initial value must already have that shape.
        generated = props["GenerateSecretString"]
        assert "username" in json.loads(generated["SecretStringTemplate"]), name
        assert generated["GenerateStringKey"] == "password", name


def test_no_wildcard_actions(template: dict[str, Any]) -> None:
    for owner, statement in _statements(template):
        for action in _as_list(statement.get("Action", [])):
            assert "*" not in action, f"{owner} {statement.get('Sid')}: {action}"
        assert "NotAction" not in statement, owner
        assert "NotResource" not in statement, owner


def test_star_resource_only_for_actions_without_resource_level_permissions(template: dict[str, Any]) -> None:
    for owner, statement in _statements(template):
        if statement["Effect"] != "Allow":
            continue
        if "*" in _as_list(statement["Resource"]):
            extra = set(_as_list(statement["Action"])) - STAR_RESOURCE_ACTIONS
            assert not extra, f"{owner} {statement.get('Sid')} grants {sorted(extra)} on Resource '*'"


def _secret_statement_problem(statement: dict[str, Any]) -> str | None:
    """Why an Allow statement with Secrets Manager actions is too wide, or None. Three shapes pass: the
    managed secrets (regcred:managed=true), the admin secrets (regcred:admin=true, read-only), and the ECR
    pull-through cache mirrors (ecr-pullthroughcache/* that carry regcred:mirror-of; read and put only)."""
    from regcred.config import ECR_MIRROR_PREFIX, MIRROR_OF

    actions = set(_as_list(statement["Action"]))
    secret_actions = {a for a in actions if a.startswith("secretsmanager:")} - STAR_RESOURCE_ACTIONS
    if secret_actions != actions:
        return "keep secret actions in statements of their own"
    resources = [_resource_text(r) for r in _as_list(statement["Resource"])]
    if not all(re.search(r":secretsmanager:.*:secret:", r) for r in resources):
        return f"not a secret ARN: {resources}"
    tags = _conditions(statement, "StringEquals")
    marks = {k: str(v).lower() for k, v in tags.items() if k in (MANAGED_TAG, ADMIN_TAG)}
    null = {k: str(v).lower() for k, v in _conditions(statement, "Null").items()}
    if marks in ({MANAGED_TAG: "true"}, {ADMIN_TAG: "true"}):
        if ADMIN_TAG in marks and not actions <= ADMIN_SECRET_ACTIONS:
            return "admin secrets are read-only"
        return None
    if marks:
        return f"condition {tags}"
    # Not tagged as managed or admin: only the mirror shape.
    assert f"secretsmanager:ResourceTag/{MIRROR_OF}" == MIRROR_OF_TAG
    assert MIRROR_RESOURCE.endswith(f":secret:{ECR_MIRROR_PREFIX}*")
    if resources != [MIRROR_RESOURCE]:
        return f"untagged secrets other than {ECR_MIRROR_PREFIX}*: {resources}"
    if null.get(MIRROR_OF_TAG) != "false":
        return f"a mirror statement without the {MIRROR_OF} condition"
    if set(statement.get("Condition", {})) != {"Null"} or set(null) != {MIRROR_OF_TAG}:
        return f"a mirror statement with other conditions: {statement.get('Condition')}"
    if not actions <= MIRROR_ACTIONS:
        return f"mirror secrets are read and put only: {sorted(actions - MIRROR_ACTIONS)}"
    return None


def test_secret_permissions_are_scoped_to_tagged_secrets(template: dict[str, Any]) -> None:
    checked = 0
    for owner, statement in _statements(template):
        actions = set(_as_list(statement["Action"]))
        secret_actions = {a for a in actions if a.startswith("secretsmanager:")} - STAR_RESOURCE_ACTIONS
        if statement["Effect"] != "Allow" or not secret_actions:
            continue
        assert _secret_statement_problem(statement) is None, f"{owner} {statement.get('Sid')}"
        checked += 1
    assert checked, "no Secrets Manager statement found"


_SECRET = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:*"
_MIRROR_OK = {
    "Effect": "Allow",
    "Action": sorted(MIRROR_ACTIONS),
    "Resource": {"Fn::Sub": MIRROR_RESOURCE},
    "Condition": {"Null": {MIRROR_OF_TAG: "false"}},
}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({}, None),
        ({"Condition": {}}, "without the regcred:mirror-of condition"),
        ({"Condition": {"Null": {MIRROR_OF_TAG: "true"}}}, "without the regcred:mirror-of condition"),
        (
            {"Condition": {"Null": {"secretsmanager:ResourceTag/regcred:admin-for": "false"}}},
            "without the regcred:mirror-of condition",
        ),
        ({"Resource": {"Fn::Sub": _SECRET}}, "untagged secrets other than ecr-pullthroughcache/*"),
        (
            {"Resource": {"Fn::Sub": _SECRET.replace(":secret:*", ":secret:batch/*")}},
            "untagged secrets other than ecr-pullthroughcache/*",
        ),
        ({"Action": [*sorted(MIRROR_ACTIONS), "secretsmanager:DeleteSecret"]}, "read and put only"),
        ({"Action": ["secretsmanager:UpdateSecretVersionStage"]}, "read and put only"),
        (
            {"Condition": {"Null": {MIRROR_OF_TAG: "false"}, "StringLike": {"aws:PrincipalTag/x": "*"}}},
            "with other conditions",
        ),
        ({"Action": ["secretsmanager:PutSecretValue", "kms:Decrypt"]}, "statements of their own"),
    ],
)
def test_mirror_statement_shape_is_checked(change: dict[str, Any], problem: str | None) -> None:
    statement = {**copy.deepcopy(_MIRROR_OK), **change}
    found = _secret_statement_problem(statement)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found, found


def test_managed_and_admin_statement_shapes_are_checked() -> None:
    managed = {
        "Effect": "Allow",
        "Action": ["secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"],
        "Resource": {"Fn::Sub": _SECRET},
        "Condition": {"StringEquals": {MANAGED_TAG: "true"}},
    }
    assert _secret_statement_problem(managed) is None
    admin = {**managed, "Condition": {"StringEquals": {ADMIN_TAG: "true"}}}
    assert _secret_statement_problem(admin) == "admin secrets are read-only"
    both = {**managed, "Condition": {"StringEquals": {MANAGED_TAG: "true", ADMIN_TAG: "true"}}}
    assert "condition" in str(_secret_statement_problem(both))
    untagged = {**managed, "Condition": {}}
    assert "untagged secrets" in str(_secret_statement_problem(untagged))


def test_the_rotation_and_sweep_functions_may_write_the_ecr_mirror(template: dict[str, Any]) -> None:
    mirror = {
        owner
        for owner, s in _statements(template)
        if s["Effect"] == "Allow"
        and [_resource_text(r) for r in _as_list(s["Resource"])] == [MIRROR_RESOURCE]
    }
    assert mirror == {ROTATE, SWEEP}
    for owner, statement in _statements(template):
        if owner in mirror and [_resource_text(r) for r in _as_list(statement["Resource"])] == [
            MIRROR_RESOURCE
        ]:
            assert set(_as_list(statement["Action"])) == MIRROR_ACTIONS, owner


def test_functions_may_write_only_bookkeeping_tags_on_secrets(template: dict[str, Any]) -> None:
    from regcred.config import BOOKKEEPING_TAGS

    tagging = [
        (owner, s)
        for owner, s in _statements(template)
        if {"secretsmanager:TagResource", "secretsmanager:UntagResource"} & set(_as_list(s["Action"]))
    ]
    # The rotation function records promotions and failures, the sweep what it saw and retired.
    assert {owner for owner, _ in tagging} >= {ROTATE, SWEEP}
    for owner, statement in tagging:
        where = f"{owner} {statement.get('Sid')}"
        # Exactly the bookkeeping keys: no configuration tag (provider, registry, api, realm hosts, admin
        # secret, images, managed/admin marks) can be written by a function.
        assert set(_as_list(_conditions(statement, "ForAllValues:StringEquals")["aws:TagKeys"])) == set(
            BOOKKEEPING_TAGS
        ), where
        assert "secretsmanager:UntagResource" not in _as_list(statement["Action"]), where
        # ForAllValues holds vacuously when the request carries no tag keys.
        assert str(_conditions(statement, "Null")["aws:TagKeys"]).lower() == "false", where


def test_deployment_allow_lists_reach_every_function(template: dict[str, Any]) -> None:
    params = template["Parameters"]
    assert params["AllowedRegistryHosts"]["Default"] == "" and params["AllowedApiHosts"]["Default"] == ""
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["REGCRED_ALLOWED_REGISTRY_HOSTS"] == {"Ref": "AllowedRegistryHosts"}
    assert variables["REGCRED_ALLOWED_API_HOSTS"] == {"Ref": "AllowedApiHosts"}


def test_kms_keys_used_only_through_services(template: dict[str, Any]) -> None:
    checked = 0
    for owner, statement in _statements(template):
        kms = {a for a in _as_list(statement["Action"]) if a.startswith("kms:")}
        if not kms:
            continue
        where = f"{owner} {statement.get('Sid')}"
        use = {a for a in kms if KMS_KEY_USE.match(a)}
        assert kms - use <= KMS_METADATA_ACTIONS, f"{where}: {sorted(kms - use - KMS_METADATA_ACTIONS)}"
        if use:
            # Key material only as Secrets Manager or SNS use it for the caller, never directly.
            assert use == kms, f"{where}: keep key-use actions apart from metadata actions"
            via = _conditions(statement, "StringEquals").get("kms:ViaService")
            assert json.dumps(via) in KMS_VIA_SERVICES, f"{where}: kms:ViaService {via}"
            checked += 1
    assert checked


def test_handlers_exist(template: dict[str, Any]) -> None:
    functions = _resources(template, "AWS::Serverless::Function")
    assert set(functions) == FUNCTIONS
    for name, function in functions.items():
        code_uri = ROOT / function["Properties"]["CodeUri"]
        module, _, attribute = _function_property(template, function, "Handler").rpartition(".")
        source = code_uri / (module.replace(".", "/") + ".py")
        assert source.is_file(), f"{name}: handler module {source.relative_to(ROOT)} is missing"
        tree = ast.parse(source.read_text(encoding="utf-8"))
        defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
        defined |= {
            t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)
        }
        assert attribute in defined, f"{name}: {source.relative_to(ROOT)} defines no {attribute}"


def test_functions_never_record_secrets(template: dict[str, Any]) -> None:
    functions = _resources(template, "AWS::Serverless::Function")
    assert set(functions) == FUNCTIONS
    for name, function in functions.items():
        env = _function_env(template, function)
        assert env["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false", name
        assert env.get("POWERTOOLS_LOGGER_LOG_EVENT", "false") == "false", name


def test_production_template_declares_no_emulator_endpoint(template: dict[str, Any]) -> None:
    # The SAM tier's development copy (devstack/sam_template.py) adds AWS_ENDPOINT_URL; in AWS the
    # functions talk to AWS itself.
    assert "AwsEndpointUrl" not in template["Parameters"]
    for name, function in _resources(template, "AWS::Serverless::Function").items():
        env = _function_env(template, function)
        assert not [k for k in env if k.startswith("AWS_ENDPOINT_URL")], name
    text = json.dumps(template)
    assert "AWS_ENDPOINT_URL" not in text and "AwsEndpointUrl" not in text


def _local_paths(template: dict[str, Any]) -> dict[str, Any]:
    """Logical id -> its local source path property (CodeUri, ContentUri, ...)."""
    out = {}
    for name, resource in template["Resources"].items():
        for key in sam_template.PATH_PROPERTIES.get(resource["Type"], ()):
            if key in resource.get("Properties", {}):
                out[name] = resource["Properties"][key]
    return out


def test_development_template_declares_the_emulator_endpoint(
    template: dict[str, Any], tmp_path: Path
) -> None:
    output = sam_template.write(TEMPLATE, tmp_path / "dev" / "template.yaml")
    dev = load_template(output)
    assert dev["Globals"]["Function"]["Environment"]["Variables"]["AWS_ENDPOINT_URL"] == ""
    functions = _resources(dev, "AWS::Serverless::Function")
    assert {ROTATE, REMEDIATE} <= set(functions)
    for name, function in functions.items():
        # Declared: `sam local invoke --env-vars` may override it. Empty: boto3 ignores it.
        assert _function_env(dev, function)["AWS_ENDPOINT_URL"] == "", name
    assert "never deploy" in dev["Description"]
    # Written away from template.yaml: its source paths are absolute and name the same directories.
    production_paths = _local_paths(template)
    dev_paths = _local_paths(dev)
    assert set(dev_paths) == set(production_paths) and {ROTATE, REMEDIATE, "RegcredLayer"} <= set(dev_paths)
    for name, path in dev_paths.items():
        assert Path(path).is_absolute() and Path(path).is_dir(), name
        assert Path(path) == (ROOT / production_paths[name]).resolve(), name
    # Nothing else differs.
    undone = copy.deepcopy(dev)
    del undone["Globals"]["Function"]["Environment"]["Variables"]["AWS_ENDPOINT_URL"]
    undone["Description"] = template["Description"]
    for name, path in production_paths.items():
        key = next(k for k in sam_template.PATH_PROPERTIES[template["Resources"][name]["Type"]])
        undone["Resources"][name]["Properties"][key] = path
    assert undone == template


def test_development_template_refuses_a_production_endpoint(template: dict[str, Any]) -> None:
    for where in ("Globals", ROTATE):
        declared = copy.deepcopy(template)
        holder = (
            declared["Globals"]["Function"]
            if where == "Globals"
            else declared["Resources"][where]["Properties"]
        )
        holder["Environment"]["Variables"]["AWS_ENDPOINT_URL"] = "http://127.0.0.1:5000"
        with pytest.raises(ValueError, match="AWS_ENDPOINT_URL"):
            sam_template.derive(declared, ROOT)


def test_layer_is_built_from_the_library(template: dict[str, Any]) -> None:
    layers = _resources(template, "AWS::Serverless::LayerVersion")
    layer = layers["RegcredLayer"]
    content = ROOT / layer["Properties"]["ContentUri"]
    assert (content / "requirements.txt").is_file()
    assert (content / "regcred" / "__init__.py").is_file()
    # layers/regcred/Makefile: SAM's python builder would bundle botocore (aws-xray-sdk requires it).
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    assert "build-RegcredLayer:" in (content / "Makefile").read_text(encoding="utf-8")
    assert layer["Properties"]["CompatibleRuntimes"] == template["Parameters"]["Runtime"]["AllowedValues"]
    for name, function in _resources(template, "AWS::Serverless::Function").items():
        assert {"Ref": "RegcredLayer"} in _function_property(template, function, "Layers"), name


def test_layer_requirements_do_not_bundle_boto() -> None:
    names = set()
    for line in (ROOT / "layers/regcred/requirements.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            match = re.match(r"[A-Za-z0-9._-]+", line)
            assert match, line
            names.add(re.sub(r"[-_.]+", "-", match.group(0)).lower())
    assert names, "empty layer requirements"
    assert not names & {"boto3", "botocore", "s3transfer"}, "boto3/botocore come with the Lambda runtime"


def test_log_group_and_alarm_follow_every_function(template: dict[str, Any]) -> None:
    groups = _resources(template, "AWS::Logs::LogGroup")
    names = {g["Properties"]["LogGroupName"]["Fn::Sub"]: g for g in groups.values()}
    alarms = _resources(template, "AWS::CloudWatch::Alarm").values()
    functions = _resources(template, "AWS::Serverless::Function")
    assert set(functions) == FUNCTIONS
    for name in functions:
        assert names[f"/aws/lambda/${{{name}}}"]["Properties"]["RetentionInDays"] == 30, name
        watched = [
            a
            for a in alarms
            if a["Properties"].get("MetricName") == "Errors"
            and {"Name": "FunctionName", "Value": {"Ref": name}} in a["Properties"].get("Dimensions", [])
        ]
        assert watched, f"no alarm on {name}'s Errors"


def test_every_alarm_notifies_the_topic_both_ways(template: dict[str, Any]) -> None:
    alarms = _resources(template, "AWS::CloudWatch::Alarm")
    assert len(alarms) >= 13
    for name, alarm in alarms.items():
        props = alarm["Properties"]
        # Into ALARM and back to OK: a person learns that a problem went away, too.
        assert props.get("AlarmActions") == [{"Ref": TOPIC}], name
        assert props.get("OKActions") == [{"Ref": TOPIC}], name
        # No data (no failure, no sweep in the window) is not a problem; never left to the default.
        assert props.get("TreatMissingData") in ("notBreaching", "ignore"), name


def _github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _runbook_anchors() -> set[str]:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"^## Runbooks\n(.*?)(?=^## )", text, re.M | re.S)
    assert match, "README.md has no Runbooks section"
    return {_github_anchor(h) for h in re.findall(r"^### (.+)$", match.group(1), re.M)}


def test_github_anchor() -> None:
    assert _github_anchor("InvalidCredentialsAlarm") == "invalidcredentialsalarm"
    assert _github_anchor("Deployment hardening") == "deployment-hardening"
    assert _github_anchor("`regcred` on PATH: how?") == "regcred-on-path-how"


def test_every_alarm_names_its_runbook(template: dict[str, Any]) -> None:
    anchors = _runbook_anchors()
    named = set()
    for name, alarm in _resources(template, "AWS::CloudWatch::Alarm").items():
        description = alarm["Properties"]["AlarmDescription"]
        assert len(description) <= 1024, name
        found = re.findall(r"Runbook: README\.md#([a-z0-9_-]+)", description)
        assert found == [name.lower()], (
            f"{name}: its description must end with Runbook: README.md#{name.lower()}"
        )
        assert found[0] in anchors, f"{name}: README.md, Runbooks, has no section {name}"
        named.add(found[0])
    # And no runbook for an alarm that is gone.
    assert anchors == named


def _alarms_on(template: dict[str, Any], metric: str, dimension: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        a["Properties"]
        for a in _resources(template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == metric and dimension in a["Properties"].get("Dimensions", [])
    ]


def _dead_letter_targets(template: dict[str, Any]) -> set[str]:
    """Every queue something hands what it gave up on to: EventBridge rule and Scheduler targets, Lambda's
    OnFailure destinations, SQS redrive policies."""
    found = set()

    def queue_of(arn: Any) -> None:
        assert isinstance(arn, dict) and "Fn::GetAtt" in arn and arn["Fn::GetAtt"][1] == "Arn", arn
        found.add(arn["Fn::GetAtt"][0])

    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Events::Rule":
            for target in props["Targets"]:
                queue_of(target["DeadLetterConfig"]["Arn"])
        if resource["Type"] == "AWS::Scheduler::Schedule":
            queue_of(props["Target"]["DeadLetterConfig"]["Arn"])
        if resource["Type"] == "AWS::Serverless::Function" and "EventInvokeConfig" in props:
            queue_of(props["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Destination"])
        if resource["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" in props:
            queue_of(props["RedrivePolicy"]["deadLetterTargetArn"])
    return found


def test_dead_letter_queues_alarm_on_the_first_message(template: dict[str, Any]) -> None:
    assert _dead_letter_targets(template) == DEAD_LETTER_QUEUES
    for queue in DEAD_LETTER_QUEUES:
        dimension = {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}
        alarms = _alarms_on(template, "ApproximateNumberOfMessagesVisible", dimension)
        assert alarms, f"no alarm on {queue}"
        for alarm in alarms:
            assert alarm["Namespace"] == "AWS/SQS", queue
            assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold", queue


def test_rollback_alarm_matches_the_metric_the_function_emits(template: dict[str, Any]) -> None:
    # Powertools Metrics (EMF) adds the dimension service=POWERTOOLS_SERVICE_NAME; an alarm matches
    # exact dimensions, so a renamed service would leave the alarm silent forever.
    env = _function_env(template, template["Resources"][REMEDIATE])
    dimension = {"Name": "service", "Value": env["POWERTOOLS_SERVICE_NAME"]}
    alarms = _alarms_on(template, "Rollback", dimension)
    assert alarms, "no alarm on the Rollback metric of the remediation function"
    for alarm in alarms:
        assert alarm["Namespace"] == env["POWERTOOLS_METRICS_NAMESPACE"]
        assert alarm["Dimensions"] == [dimension]
        assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"


def test_notification_topic_can_receive_alarms(template: dict[str, Any]) -> None:
    topic = template["Resources"][TOPIC]["Properties"]
    # CloudWatch alarms cannot use the AWS managed key alias/aws/sns: a customer managed key that lets
    # cloudwatch.amazonaws.com use it.
    key_ref = topic["KmsMasterKeyId"]
    assert isinstance(key_ref, dict) and "Fn::GetAtt" in key_ref, key_ref
    key = template["Resources"][key_ref["Fn::GetAtt"][0]]
    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"]["EnableKeyRotation"] is True
    cloudwatch = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert cloudwatch
    assert {"kms:Decrypt", "kms:GenerateDataKey*"} <= {a for s in cloudwatch for a in _as_list(s["Action"])}
    for statement in cloudwatch:
        assert _conditions(statement, "StringEquals")["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}


def test_email_subscription_only_when_an_address_is_given(template: dict[str, Any]) -> None:
    assert template["Parameters"]["NotificationEmail"]["Default"] == ""
    subscriptions = _resources(template, "AWS::SNS::Subscription")
    assert subscriptions
    for name, subscription in subscriptions.items():
        condition = subscription["Condition"]
        assert template["Conditions"][condition] == {
            "Fn::Not": [{"Fn::Equals": [{"Ref": "NotificationEmail"}, ""]}]
        }, name
        assert subscription["Properties"]["TopicArn"] == {"Ref": TOPIC}, name
        assert subscription["Properties"]["Endpoint"] == {"Ref": "NotificationEmail"}, name


def test_remediation_rules_match_failure_events(template: dict[str, Any]) -> None:
    patterns = [r["Properties"]["EventPattern"] for r in _rules(template).values()]
    batch = [p for p in patterns if p["source"] == ["aws.batch"]]
    ecs = [p for p in patterns if p["source"] == ["aws.ecs"]]
    rotation = [p for p in patterns if p["source"] == ["aws.secretsmanager"]]
    assert len(patterns) == len(batch) + len(ecs) + len(rotation)
    # Secrets Manager's rotation outcomes reach EventBridge through CloudTrail (non-API events).
    assert rotation == [
        {
            "source": ["aws.secretsmanager"],
            "detail-type": ["AWS Service Event via CloudTrail"],
            "detail": {"eventName": ["RotationSucceeded", "RotationFailed", "RotationAbandoned"]},
        }
    ]
    assert batch == [
        {"source": ["aws.batch"], "detail-type": ["Batch Job State Change"], "detail": {"status": ["FAILED"]}}
    ]
    assert ecs == [
        {
            "source": ["aws.ecs"],
            "detail-type": ["ECS Task State Change"],
            "detail": {"lastStatus": ["STOPPED"], "stopCode": ["TaskFailedToStart"]},
        }
    ]


def test_every_rule_delivers_to_the_remediation_queue_retries_then_dead_letters(
    template: dict[str, Any],
) -> None:
    rules = _rules(template)
    assert set(rules) == REMEDIATION_RULES
    for name, rule in rules.items():
        targets = rule["Properties"]["Targets"]
        assert len(targets) == 1, name
        for target in targets:
            # To the queue, not the function: the event source mapping bounds the concurrency of a storm.
            assert target["Arn"] == {"Fn::GetAtt": [REMEDIATION_QUEUE, "Arn"]}, name
            assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": [EVENTS_DLQ, "Arn"]}, name
            assert target["RetryPolicy"] == RULE_RETRY_POLICY, name
    # Nothing invokes the remediation function but its event source mapping: no permission for EventBridge
    # (or anyone) to invoke it, and no asynchronous-invocation settings.
    permissions = _resources(template, "AWS::Lambda::Permission")
    assert set(permissions) == {ROTATE_PERMISSION}
    assert all(p["Properties"]["Principal"] != "events.amazonaws.com" for p in permissions.values())
    assert "EventInvokeConfig" not in template["Resources"][REMEDIATE]["Properties"]


@pytest.mark.parametrize("queue", [EVENTS_DLQ, REMEDIATION_QUEUE])
def test_the_rules_queues_accept_only_the_rules(template: dict[str, Any], queue: str) -> None:
    policies = [
        p["Properties"]
        for p in _resources(template, "AWS::SQS::QueuePolicy").values()
        if {"Ref": queue} in p["Properties"]["Queues"]
    ]
    assert len(policies) == 1, "EventBridge cannot write to a queue without a queue policy"
    assert policies[0]["Queues"] == [{"Ref": queue}]
    statements = _as_list(policies[0]["PolicyDocument"]["Statement"])
    assert statements
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert statement["Principal"] == {"Service": "events.amazonaws.com"}
        assert _as_list(statement["Action"]) == ["sqs:SendMessage"]
        assert statement["Resource"] == {"Fn::GetAtt": [queue, "Arn"]}
        # Only this stack's rules (confused-deputy guard).
        sources = _as_list(_conditions(statement, "ArnEquals")["aws:SourceArn"])
        assert sorted(map(json.dumps, sources)) == sorted(
            json.dumps({"Fn::GetAtt": [name, "Arn"]}) for name in _rules(template)
        )
    # No other queue accepts anyone's messages.
    others = [
        q for p in _resources(template, "AWS::SQS::QueuePolicy").values() for q in p["Properties"]["Queues"]
    ]
    assert sorted(map(json.dumps, others)) == sorted(
        json.dumps({"Ref": q}) for q in (EVENTS_DLQ, REMEDIATION_QUEUE)
    )


def test_every_queue_is_encrypted_and_dead_letters_are_kept_two_weeks(template: dict[str, Any]) -> None:
    queues = _resources(template, "AWS::SQS::Queue")
    assert set(queues) == DEAD_LETTER_QUEUES | set(WORK_QUEUES)
    for name, queue in queues.items():
        props = queue["Properties"]
        assert props["SqsManagedSseEnabled"] is True, name
        assert "KmsMasterKeyId" not in props, name
        if name in DEAD_LETTER_QUEUES:
            assert props["MessageRetentionPeriod"] == 1209600, name


@pytest.mark.parametrize("queue", sorted(WORK_QUEUES))
def test_a_work_queue_outlives_its_retries(template: dict[str, Any], queue: str) -> None:
    function, dead_letters, receives = WORK_QUEUES[queue]
    props = template["Resources"][queue]["Properties"]
    timeout = _function_property(template, template["Resources"][function], "Timeout")
    # Lambda's advice for an SQS event source: a visibility timeout of at least 6 times the function's.
    assert props["VisibilityTimeout"] >= 6 * timeout
    assert props["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dead_letters, "Arn"]},
        "maxReceiveCount": receives,
    }
    # A message that expires before its last receive would never reach the dead-letter queue.
    assert (
        props["MessageRetentionPeriod"]
        > props["RedrivePolicy"]["maxReceiveCount"] * props["VisibilityTimeout"]
    )
    # SQS keeps a dead letter by its original enqueue time: the dead-letter queue must keep it longer.
    assert (
        template["Resources"][dead_letters]["Properties"]["MessageRetentionPeriod"]
        > props["MessageRetentionPeriod"]
    )


def test_coalesce_table_expires_records(template: dict[str, Any]) -> None:
    table = template["Resources"][COALESCE_TABLE]
    assert table["Type"] == "AWS::DynamoDB::Table"
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert props["AttributeDefinitions"] == [{"AttributeName": "pk", "AttributeType": "S"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["SSESpecification"]["SSEEnabled"] is True


def test_remediation_function_settings(template: dict[str, Any]) -> None:
    function = template["Resources"][REMEDIATE]
    props = function["Properties"]
    assert props["CodeUri"] == "functions/remediate/"
    assert _function_property(template, function, "Handler") == "app.handler"
    assert _function_property(template, function, "Timeout") == 300
    assert _function_property(template, function, "Tracing") == "Active"
    # Coalescing, not a reservation, bounds the work of a storm (see the template).
    assert "ReservedConcurrentExecutions" not in props
    env = _function_env(template, function)
    assert env["POWERTOOLS_SERVICE_NAME"] == "regcred-remediate"
    assert env["REGCRED_COALESCE_TABLE"] == {"Ref": COALESCE_TABLE}
    assert env["REGCRED_TOPIC_ARN"] == {"Ref": TOPIC}
    assert env["REGCRED_COOLDOWN"] == {"Ref": "RemediationCooldown"}
    assert env["REGCRED_RESUBMIT"] == {"Ref": "ResubmitJobs"}
    assert env["REGCRED_GRACE_PERIOD"] == {"Ref": "GracePeriod"}
    params = template["Parameters"]
    assert params["RemediationCooldown"]["AllowedPattern"] == params["GracePeriod"]["AllowedPattern"]
    assert re.match(params["RemediationCooldown"]["AllowedPattern"], params["RemediationCooldown"]["Default"])
    assert params["ResubmitJobs"]["Default"] == "false"
    assert set(params["ResubmitJobs"]["AllowedValues"]) == {"true", "false"}


def test_batch_tagging_is_limited_to_regcred_keys_on_jobs(template: dict[str, Any]) -> None:
    tagging = _granting(template, "batch:TagResource")
    assert tagging
    for owner, statement in tagging:
        where = f"{owner} {statement.get('Sid')}"
        assert _as_list(statement["Action"]) == ["batch:TagResource"], where
        for resource in _as_list(statement["Resource"]):
            assert _resource_text(resource).endswith(":job/*"), where
        assert _conditions(statement, "ForAllValues:StringLike")["aws:TagKeys"] == ["regcred:*"], where
        # ForAllValues holds vacuously when the request carries no tag keys.
        assert str(_conditions(statement, "Null")["aws:TagKeys"]).lower() == "false", where


def test_ecs_tagging_is_limited_to_regcred_keys_on_tasks(template: dict[str, Any]) -> None:
    tagging = _granting(template, "ecs:TagResource")
    assert {owner for owner, _ in tagging} == {REMEDIATE}
    for owner, statement in tagging:
        where = f"{owner} {statement.get('Sid')}"
        assert _as_list(statement["Action"]) == ["ecs:TagResource"], where
        resources = [_resource_text(r) for r in _as_list(statement["Resource"])]
        assert resources == ["arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:task/*"], where
        assert _conditions(statement, "ForAllValues:StringLike")["aws:TagKeys"] == ["regcred:*"], where
        assert str(_conditions(statement, "Null")["aws:TagKeys"]).lower() == "false", where


def test_submit_job_only_when_resubmission_is_enabled(template: dict[str, Any]) -> None:
    assert template["Conditions"][RESUBMIT_CONDITION] == {"Fn::Equals": [{"Ref": "ResubmitJobs"}, "true"]}
    submitting = [
        (owner, s, c)
        for owner, s, c in _conditional_statements(template)
        if "batch:SubmitJob" in _as_list(s["Action"])
    ]
    assert submitting
    for owner, statement, condition in submitting:
        where = f"{owner} {statement.get('Sid')}"
        assert condition == RESUBMIT_CONDITION, where
        resources = sorted(_resource_text(r).rsplit(":", 1)[1] for r in _as_list(statement["Resource"]))
        assert resources == ["job-definition/*", "job-queue/*"], where


def test_coalescing_reads_and_writes_items_of_its_table_only(template: dict[str, Any]) -> None:
    found = 0
    for owner, statement in _statements(template):
        actions = {a for a in _as_list(statement["Action"]) if a.startswith("dynamodb:")}
        if not actions:
            continue
        where = f"{owner} {statement.get('Sid')}"
        assert actions <= {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}, where
        assert _as_list(statement["Resource"]) == [{"Fn::GetAtt": [COALESCE_TABLE, "Arn"]}], where
        found += 1
    assert found


def test_publish_only_to_the_notification_topic(template: dict[str, Any]) -> None:
    publishing = [(o, s) for o, s in _statements(template) if "sns:" in json.dumps(s["Action"])]
    assert publishing
    for owner, statement in publishing:
        where = f"{owner} {statement.get('Sid')}"
        assert _as_list(statement["Action"]) == ["sns:Publish"], where
        assert _as_list(statement["Resource"]) == [{"Ref": TOPIC}], where


def test_rotate_secret_callers_may_invoke_only_the_rotation_function(template: dict[str, Any]) -> None:
    # RotateSecret also needs lambda:InvokeFunction on the rotation function (API reference).
    rotators = {owner for owner, _ in _granting(template, "secretsmanager:RotateSecret")}
    assert rotators == {REMEDIATE, SWEEP}
    invokers = _granting(template, "lambda:InvokeFunction")
    for owner, statement in invokers:
        # The schedule's role invokes the sweep; a function invokes only the rotation function.
        target = SWEEP if owner == SCHEDULE_ROLE else ROTATE
        assert _as_list(statement["Resource"]) == [{"Fn::GetAtt": [target, "Arn"]}], owner
    assert rotators <= {owner for owner, _ in invokers}
    assert {owner for owner, _ in invokers} == rotators | {SCHEDULE_ROLE}


def test_execution_role_diagnosis_is_limited_to_roles(template: dict[str, Any]) -> None:
    simulating = _granting(template, "iam:SimulatePrincipalPolicy")
    assert simulating
    for owner, statement in simulating:
        assert _as_list(statement["Action"]) == ["iam:SimulatePrincipalPolicy"], owner
        resources = [_resource_text(r) for r in _as_list(statement["Resource"])]
        assert resources == ["arn:${AWS::Partition}:iam::${AWS::AccountId}:role/*"], owner


def test_outputs(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert outputs["RemediateFunctionArn"]["Value"] == {"Fn::GetAtt": [REMEDIATE, "Arn"]}
    assert outputs["NotificationTopicArn"]["Value"] == {"Ref": TOPIC}
    assert outputs["EventsDeadLetterQueueUrl"]["Value"] == {"Ref": EVENTS_DLQ}
    assert outputs["RemediationQueueUrl"]["Value"] == {"Ref": REMEDIATION_QUEUE}
    assert outputs["RemediationDeadLetterQueueUrl"]["Value"] == {"Ref": REMEDIATION_DLQ}
    assert outputs["CoalesceTableName"]["Value"] == {"Ref": COALESCE_TABLE}
    assert outputs["SweepFunctionArn"]["Value"] == {"Fn::GetAtt": [SWEEP, "Arn"]}
    assert outputs["SweepQueueUrl"]["Value"] == {"Ref": SWEEP_QUEUE}
    assert outputs["SweepDeadLetterQueueUrl"]["Value"] == {"Ref": SWEEP_DLQ}
    assert outputs["SweepScheduleDeadLetterQueueUrl"]["Value"] == {"Ref": SCHEDULE_DLQ}
    assert outputs["DashboardName"]["Value"] == {"Ref": DASHBOARD}
    # Every queue's URL is an output: the runbooks read them from the stack.
    assert {
        o["Value"]["Ref"] for o in outputs.values() if isinstance(o["Value"], dict) and "Ref" in o["Value"]
    } >= (DEAD_LETTER_QUEUES | set(WORK_QUEUES))
    for key in ("ManagedSecretsKeyArn", "ManagedSecretsKeyAlias"):
        assert outputs[key]["Condition"] == "CreateManagedSecretsKey", key
    assert outputs["ManagedSecretsKeyArn"]["Value"] == {"Fn::GetAtt": [SECRETS_KEY, "Arn"]}


# ------------------------------------------------------------------------------------------------------
# The sweep (docs/ARCHITECTURE.md, "The sweep"): one function, started by EventBridge Scheduler, fanning
# out through SQS to itself above a threshold.

SWEEP_ENV = {
    "POWERTOOLS_SERVICE_NAME": "regcred-sweep",
    "POWERTOOLS_LOGGER_LOG_EVENT": "false",
    "REGCRED_SWEEP_PERIOD": {"Fn::Sub": "${SweepIntervalMinutes}m"},
    "REGCRED_SWEEP_PARALLELISM": {"Ref": "SweepParallelism"},
    "REGCRED_SWEEP_SECRET_DEADLINE": {"Ref": "SweepSecretDeadline"},
    "REGCRED_SWEEP_FANOUT_THRESHOLD": {"Ref": "SweepFanoutThreshold"},
    "REGCRED_SWEEP_QUEUE_URL": {"Ref": SWEEP_QUEUE},
    "REGCRED_COALESCE_TABLE": {"Ref": COALESCE_TABLE},
    "REGCRED_GRACE_PERIOD": {"Ref": "GracePeriod"},
    "REGCRED_PER_SECRET_METRICS": {"Ref": "PerSecretMetrics"},
}
# name -> (type, default, min, max); None where the spec sets no bound.
SWEEP_NUMBERS = {
    "SweepIntervalMinutes": (15, 5, 1440),
    "SweepParallelism": (16, 1, 64),
    "SweepFanoutThreshold": (200, None, None),
    "SweepWorkerConcurrency": (20, 2, 1000),
}
SQS_RECEIVE_ACTIONS = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
# Everything the sweep function may do (the spec's list): nothing more creeps in unnoticed.
SWEEP_ACTIONS = {
    "secretsmanager:ListSecrets",
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetSecretValue",
    "secretsmanager:RotateSecret",
    "secretsmanager:TagResource",
    "secretsmanager:PutSecretValue",
    "lambda:InvokeFunction",
    "batch:DescribeJobDefinitions",
    "kms:Decrypt",
    "kms:GenerateDataKey",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "sqs:SendMessage",
    *SQS_RECEIVE_ACTIONS,
}


def test_sweep_function_settings(template: dict[str, Any]) -> None:
    function = template["Resources"][SWEEP]
    props = function["Properties"]
    assert props["CodeUri"] == "functions/sweep/"
    assert _function_property(template, function, "Handler") == "app.handler"
    assert _function_property(template, function, "Timeout") == 900
    assert _function_property(template, function, "MemorySize") == 512
    assert _function_property(template, function, "Tracing") == "Active"
    # Exactly the names the handler reads (and every value from the parameter the spec names).
    assert props["Environment"]["Variables"] == SWEEP_ENV
    for value in SWEEP_ENV.values():
        if isinstance(value, dict) and "Ref" in value:
            assert value["Ref"] in template["Parameters"] or value["Ref"] in template["Resources"], value
    # One function, both roles: no SAM event (a Schedule event would make an EventBridge rule without a
    # dead-letter queue, an SQS event would attach AWSLambdaSQSQueueExecutionRole: every queue).
    for name, f in _resources(template, "AWS::Serverless::Function").items():
        assert not f["Properties"].get("Events"), name


def test_sweep_parameters(template: dict[str, Any]) -> None:
    params = template["Parameters"]
    for name, (default, low, high) in SWEEP_NUMBERS.items():
        assert params[name]["Type"] == "Number", name
        assert params[name]["Default"] == default, name
        if low is not None:
            assert (params[name]["MinValue"], params[name]["MaxValue"]) == (low, high), name
        assert params[name].get("MinValue", 1) <= default <= params[name].get("MaxValue", default), name
    deadline = params["SweepSecretDeadline"]
    assert deadline["Type"] == "String" and deadline["Default"] == "30s"
    for good in ("30s", "30", "2m"):
        assert re.fullmatch(deadline["AllowedPattern"], good), good
    for bad in ("1h", "1d", "30 s", "soon", ""):
        assert not re.fullmatch(deadline["AllowedPattern"], bad), bad
    per_secret = params["PerSecretMetrics"]
    assert per_secret["Default"] == "true" and set(per_secret["AllowedValues"]) == {"true", "false"}
    # What it costs is said where it is chosen.
    assert "custom metric" in per_secret["Description"]


def _sub_text(value: Any) -> str:
    assert isinstance(value, dict) and isinstance(value.get("Fn::Sub"), str), value
    return str(value["Fn::Sub"])


def _substituted(text: str) -> str:
    """An !Sub string with every ${...} replaced by <<...>> (literal ${! escapes are refused)."""
    assert "${!" not in text
    return re.sub(r"\$\{([^}]+)\}", lambda m: f"<<{m.group(1)}>>", text)


def test_sweep_schedule_invokes_the_sweep_every_interval(template: dict[str, Any]) -> None:
    schedules = _resources(template, "AWS::Scheduler::Schedule")
    assert set(schedules) == {SCHEDULE}
    props = schedules[SCHEDULE]["Properties"]
    assert props["ScheduleExpression"] == {"Fn::Sub": "rate(${SweepIntervalMinutes} minutes)"}
    assert props["FlexibleTimeWindow"] == {"Mode": "OFF"} and props["State"] == "ENABLED"
    # No Name: a fixed one would clash between two stacks of one account and region.
    assert "Name" not in props
    target = props["Target"]
    assert target["Arn"] == {"Fn::GetAtt": [SWEEP, "Arn"]}
    assert target["RoleArn"] == {"Fn::GetAtt": [SCHEDULE_ROLE, "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [SCHEDULE_DLQ, "Arn"]}}
    retry = target["RetryPolicy"]
    assert retry["MaximumRetryAttempts"] >= 1
    # A delivery retried later than the shortest interval would overlap the next sweep.
    assert (
        retry["MaximumEventAgeInSeconds"] <= 60 * template["Parameters"]["SweepIntervalMinutes"]["MinValue"]
    )
    # The handler tells a scheduled sweep from SQS work by the event: the input has the sample's shape.
    sent = json.loads(_substituted(_sub_text(target["Input"])))
    sample = json.loads(SWEEP_EVENT.read_text(encoding="utf-8"))
    assert set(sent) == set(sample)
    assert sent["source"] == sample["source"] == "aws.scheduler"
    assert sent["detail-type"] == sample["detail-type"]
    assert sent["resources"] == ["<aws.scheduler.schedule-arn>"]
    assert sent["account"] == "<<AWS::AccountId>>" and sent["region"] == "<<AWS::Region>>"


def test_a_failed_sweep_is_kept_not_retried(template: dict[str, Any]) -> None:
    config = template["Resources"][SWEEP]["Properties"]["EventInvokeConfig"]
    # The next scheduled sweep is the retry.
    assert config["MaximumRetryAttempts"] == 0
    assert config["DestinationConfig"]["OnFailure"] == {
        "Type": "SQS",
        "Destination": {"Fn::GetAtt": [SCHEDULE_DLQ, "Arn"]},
    }


def test_the_schedule_role_only_invokes_the_sweep(template: dict[str, Any]) -> None:
    role = template["Resources"][SCHEDULE_ROLE]
    assert role["Type"] == "AWS::IAM::Role"
    trust = _as_list(role["Properties"]["AssumeRolePolicyDocument"]["Statement"])
    assert len(trust) == 1
    assert trust[0]["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert _as_list(trust[0]["Action"]) == ["sts:AssumeRole"]
    # Only Scheduler acting for this account (confused-deputy guard).
    assert _conditions(trust[0], "StringEquals") == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    granted = sorted(
        (a, json.dumps(r))
        for owner, s in _statements(template)
        if owner == SCHEDULE_ROLE
        for a in _as_list(s["Action"])
        for r in _as_list(s["Resource"])
    )
    assert granted == [
        ("lambda:InvokeFunction", json.dumps({"Fn::GetAtt": [SWEEP, "Arn"]})),
        ("sqs:SendMessage", json.dumps({"Fn::GetAtt": [SCHEDULE_DLQ, "Arn"]})),
    ]


def test_the_fan_out_event_source(template: dict[str, Any]) -> None:
    mappings = _resources(template, "AWS::Lambda::EventSourceMapping")
    assert set(mappings) == {SWEEP_EVENT_SOURCE, REMEDIATION_EVENT_SOURCE}
    assert mappings[SWEEP_EVENT_SOURCE]["Properties"] == {
        "EventSourceArn": {"Fn::GetAtt": [SWEEP_QUEUE, "Arn"]},
        "FunctionName": {"Ref": SWEEP},
        "BatchSize": 10,
        # Only the secrets the handler reports return to the queue (Powertools BatchProcessor).
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "ScalingConfig": {"MaximumConcurrency": {"Ref": "SweepWorkerConcurrency"}},
    }


def test_queue_permissions_are_each_functions_own(template: dict[str, Any]) -> None:
    own = {function: queue for queue, (function, _, _) in WORK_QUEUES.items()}
    granted: dict[str, set[str]] = {function: set() for function in own}
    for owner, statement in _statements(template):
        actions = {a for a in _as_list(statement["Action"]) if a.startswith("sqs:")}
        if not actions:
            continue
        where = f"{owner} {statement.get('Sid')}"
        assert actions == set(_as_list(statement["Action"])), where
        if owner == SCHEDULE_ROLE:
            assert actions == {"sqs:SendMessage"}, where
            continue
        assert owner in own, where
        assert _as_list(statement["Resource"]) == [{"Fn::GetAtt": [own[owner], "Arn"]}], where
        granted[owner] |= actions
    # The sweep sends its fan-out; both poll their own queue through their event source mapping. No purge,
    # no other queue; the remediation function sends nothing (it has no OnFailure destination any more).
    assert granted == {
        SWEEP: {"sqs:SendMessage"} | SQS_RECEIVE_ACTIONS,
        REMEDIATE: SQS_RECEIVE_ACTIONS,
    }


def test_the_remediation_event_source_bounds_a_storm(template: dict[str, Any]) -> None:
    mapping = _resources(template, "AWS::Lambda::EventSourceMapping")[REMEDIATION_EVENT_SOURCE]
    props = mapping["Properties"]
    assert props == {
        "EventSourceArn": {"Fn::GetAtt": [REMEDIATION_QUEUE, "Arn"]},
        "FunctionName": {"Ref": REMEDIATE},
        "BatchSize": {"Ref": "RemediationBatchSize"},
        "MaximumBatchingWindowInSeconds": props["MaximumBatchingWindowInSeconds"],
        # Only the events the handler reports return to the queue (Powertools BatchProcessor): a poison
        # message alone goes to the dead-letter queue.
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "ScalingConfig": {"MaximumConcurrency": {"Ref": "RemediationMaxConcurrency"}},
    }
    # A window lets a batch hold more than 10 messages (Lambda's rule for SQS), and keeps a lone event waiting
    # a few seconds at most.
    assert 1 <= props["MaximumBatchingWindowInSeconds"] <= 10
    params = template["Parameters"]
    concurrency = params["RemediationMaxConcurrency"]
    assert concurrency["Type"] == "Number"
    # Lambda's bounds for an SQS event source's MaximumConcurrency.
    assert (concurrency["MinValue"], concurrency["MaxValue"]) == (2, 1000)
    assert concurrency["MinValue"] <= concurrency["Default"] <= 10
    batch = params["RemediationBatchSize"]
    assert batch["Type"] == "Number" and batch["Default"] == 10
    assert 1 == batch["MinValue"] <= batch["Default"] <= batch["MaxValue"] <= 10000
    # The handler stops starting events 30 s before the end; a batch at its largest still fits the timeout in
    # the visibility timeout (it is not delivered twice while it runs).
    timeout = _function_property(template, template["Resources"][REMEDIATE], "Timeout")
    visibility = template["Resources"][REMEDIATION_QUEUE]["Properties"]["VisibilityTimeout"]
    assert visibility >= 6 * timeout
    # A reservation would take capacity from the account and throttle the mapping's invocations.
    assert "ReservedConcurrentExecutions" not in template["Resources"][REMEDIATE]["Properties"]


def test_sweep_function_permissions_are_the_specs(template: dict[str, Any]) -> None:
    statements = [s for owner, s in _statements(template) if owner == SWEEP]
    assert all(s["Effect"] == "Allow" for s in statements)
    assert {a for s in statements for a in _as_list(s["Action"])} == SWEEP_ACTIONS
    for statement in statements:
        actions = set(_as_list(statement["Action"]))
        resources = [_resource_text(r) for r in _as_list(statement["Resource"])]
        if "secretsmanager:PutSecretValue" in actions:
            # The sweep writes no managed secret: only a mirror that does not hold AWSCURRENT.
            assert resources == [MIRROR_RESOURCE], statement.get("Sid")
        if "secretsmanager:RotateSecret" in actions:
            assert _conditions(statement, "StringEquals") == {MANAGED_TAG: "true"}, statement.get("Sid")


# Every alarm on a regcred metric: metric -> the function that emits it (its POWERTOOLS_SERVICE_NAME is
# the one dimension; an alarm matches exact dimensions).
ALARMED_METRICS = {
    "InvalidCredentials": SWEEP,
    "ExpiringSoon": SWEEP,
    "SweepErrors": SWEEP,
    "RotationFailed": ROTATE,
    "SecretsManagerRotationFailed": REMEDIATE,
    "Rollback": REMEDIATE,
}


def test_alarms_match_the_metrics_the_functions_emit(template: dict[str, Any]) -> None:
    for metric, function in ALARMED_METRICS.items():
        env = _function_env(template, template["Resources"][function])
        dimension = {"Name": "service", "Value": env["POWERTOOLS_SERVICE_NAME"]}
        alarms = _alarms_on(template, metric, dimension)
        assert len(alarms) == 1, f"no alarm on {metric} of {function}"
        alarm = alarms[0]
        assert alarm["Namespace"] == env["POWERTOOLS_METRICS_NAMESPACE"], metric
        assert alarm["Dimensions"] == [dimension], metric
        assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold", metric
    regcred_alarms = [
        a["Properties"]["MetricName"]
        for a in _resources(template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["Namespace"] == "regcred"
    ]
    assert sorted(regcred_alarms) == sorted(ALARMED_METRICS)
    # The spec's service names (other helpers emit under them).
    services = {
        f: _function_env(template, template["Resources"][f])["POWERTOOLS_SERVICE_NAME"] for f in FUNCTIONS
    }
    assert services == {ROTATE: "regcred-rotate", REMEDIATE: "regcred-remediate", SWEEP: "regcred-sweep"}


# ------------------------------------------------------------------------------------------------------
# The dashboard. What each function emits (namespace regcred, EMF): metric -> (function, dimensions
# beyond service). From the code (rotate, remediate) and the sweep's spec.

EMITTED_METRICS: dict[str, tuple[str, frozenset[str]]] = {
    **{
        name: (SWEEP, frozenset())
        for name in (
            "SecretsSwept",
            "InvalidCredentials",
            "ExpiringSoon",
            "SweepErrors",
            "SecretsUnchecked",
            "RotationsStarted",
            "Retired",
            "OrphansRevoked",
        )
    },
    **{
        name: (SWEEP, frozenset({"secret"}))
        for name in ("CredentialValid", "SecondsToExpiry", "RateLimitRemaining")
    },
    "RotationFailed": (ROTATE, frozenset()),
    "RotationStepSucceeded": (ROTATE, frozenset({"step", "provider", "outcome"})),
    "Rollback": (REMEDIATE, frozenset()),
    "SecretsManagerRotationFailed": (REMEDIATE, frozenset()),
    "PullFailure": (REMEDIATE, frozenset({"class", "registry"})),
}
PSEUDO_PARAMETERS = {"AWS::Region", "AWS::StackName", "AWS::AccountId", "AWS::Partition", "AWS::URLSuffix"}
_SEARCH = re.compile(r"SEARCH\('\{([^}]*)\}\s*([^']*)',\s*'(\w+)',\s*(\d+)\)")


def _dashboard(template: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The dashboard body as JSON (every ${...} made a <<...>> string), and the names it substitutes."""
    text = _sub_text(template["Resources"][DASHBOARD]["Properties"]["DashboardBody"])
    body = json.loads(_substituted(text))
    assert isinstance(body, dict)
    return body, re.findall(r"\$\{([^}]+)\}", text)


def _searches(expression: str) -> list[tuple[frozenset[str], dict[str, str], str]]:
    """Each SEARCH(...) of a metric math expression: its schema, its key="value" terms, its statistic."""
    found = []
    for schema, terms, stat, _period in _SEARCH.findall(expression):
        names = [n.strip() for n in schema.split(",")]
        filters = dict(re.findall(r'([\w-]+)="([^"]*)"', terms))
        # Every term is key="value": a bare word would match any metric that has it anywhere.
        assert not re.sub(r'[\w-]+="[^"]*"', "", terms).strip(), terms
        found.append((frozenset([names[0], *names[1:]]), {"namespace": names[0], **filters}, stat))
    assert found or "SEARCH" not in expression, expression
    return found


def test_search_parser() -> None:
    [(schema, filters, stat)] = _searches(
        'SUM(SEARCH(\'{regcred,service,secret} service="regcred-sweep" MetricName="CredentialValid"\', '
        "'Minimum', 300))"
    )
    assert schema == {"regcred", "service", "secret"} and stat == "Minimum"
    assert filters == {"namespace": "regcred", "service": "regcred-sweep", "MetricName": "CredentialValid"}
    with pytest.raises(AssertionError):
        _searches("SEARCH('{regcred,service} CredentialValid', 'Minimum', 300)")


def _dashboard_metrics(body: dict[str, Any]) -> list[tuple[str, str, dict[str, str], bool]]:
    """(namespace, metric, dimensions, found by SEARCH) of every metric the widgets draw. For a SEARCH the
    dimensions are its schema's names, with the value it filters on (or "*")."""
    out = []
    for widget in body["widgets"]:
        if widget["type"] != "metric":
            continue
        for row in widget["properties"]["metrics"]:
            if isinstance(row[0], dict):
                for schema, filters, _stat in _searches(row[0]["expression"]):
                    namespace = filters["namespace"]
                    dims = {d: filters.get(d, "*") for d in schema - {namespace}}
                    assert set(filters) - {"namespace", "MetricName"} <= set(dims), filters
                    out.append((namespace, filters["MetricName"], dims, True))
                continue
            items = [i for i in row if not isinstance(i, dict)]
            assert len(items) % 2 == 0 and "..." not in items, row
            out.append((items[0], items[1], dict(zip(items[2::2], items[3::2], strict=True)), False))
    return out


def test_dashboard_body_is_json_and_names_only_what_exists(template: dict[str, Any]) -> None:
    body, names = _dashboard(template)
    assert names
    for name in names:
        logical_id, _, attribute = name.partition(".")
        if attribute:
            assert logical_id in template["Resources"], name
        else:
            assert (
                logical_id in template["Resources"]
                or logical_id in template["Parameters"]
                or (logical_id in PSEUDO_PARAMETERS)
            ), name
    cells: set[tuple[int, int]] = set()
    for widget in body["widgets"]:
        assert widget["type"] in ("metric", "text", "alarm"), widget["type"]
        assert widget["x"] + widget["width"] <= 24, widget
        mine = {
            (x, y)
            for x in range(widget["x"], widget["x"] + widget["width"])
            for y in range(widget["y"], widget["y"] + widget["height"])
        }
        assert not mine & cells, f"widgets overlap: {widget.get('properties', {}).get('title')}"
        cells |= mine
        if widget["type"] == "metric":
            assert widget["properties"]["region"] == "<<AWS::Region>>", widget["properties"]["title"]


def test_dashboard_shows_only_metrics_the_code_emits(template: dict[str, Any]) -> None:
    body, _ = _dashboard(template)
    resources = template["Resources"]
    shown: dict[str, set[bool]] = {}
    for namespace, metric, dims, by_search in _dashboard_metrics(body):
        where = f"{namespace} {metric} {dims}"
        if namespace == "regcred":
            assert metric in EMITTED_METRICS, where
            function, extra = EMITTED_METRICS[metric]
            service = _function_env(template, resources[function])["POWERTOOLS_SERVICE_NAME"]
            assert set(dims) == {"service"} | extra, where
            assert dims["service"] == service, where
            # A metric with more dimensions than service can only be drawn per value: by SEARCH.
            assert by_search or not extra, where
            shown.setdefault(metric, set()).add(by_search)
        elif namespace == "AWS/SQS":
            assert metric == "ApproximateNumberOfMessagesVisible", where
            queue = re.fullmatch(r"<<(\w+)\.QueueName>>", dims.pop("QueueName"))
            assert queue and resources[queue.group(1)]["Type"] == "AWS::SQS::Queue" and not dims, where
            shown.setdefault(f"queue {queue.group(1)}", set()).add(by_search)
        elif namespace == "AWS/Lambda":
            assert metric in ("Errors", "Duration"), where
            function_ref = re.fullmatch(r"<<(\w+)>>", dims.pop("FunctionName"))
            assert function_ref and function_ref.group(1) in FUNCTIONS and not dims, where
            shown.setdefault(f"{metric} {function_ref.group(1)}", set()).add(by_search)
        else:
            raise AssertionError(f"unexpected namespace: {where}")
    # Every metric the code emits is on it, and so is every queue and every function's errors.
    assert {m for m in shown if m in EMITTED_METRICS} == set(EMITTED_METRICS)
    queues = _resources(template, "AWS::SQS::Queue")
    assert {m for m in shown if m.startswith("queue ")} == {f"queue {q}" for q in queues}
    assert {m for m in shown if m.startswith("Errors ")} == {f"Errors {f}" for f in FUNCTIONS}
    # Each secret's health and the pull failures by class and registry: by SEARCH, one line per value.
    for metric in ("CredentialValid", "SecondsToExpiry", "PullFailure"):
        assert shown[metric] == {True}, metric


def test_dashboard_lists_every_alarm(template: dict[str, Any]) -> None:
    body, _ = _dashboard(template)
    widgets = [w for w in body["widgets"] if w["type"] == "alarm"]
    assert len(widgets) == 1
    listed = widgets[0]["properties"]["alarms"]
    alarms = _resources(template, "AWS::CloudWatch::Alarm")
    assert sorted(listed) == sorted(f"<<{a}.Arn>>" for a in alarms)


def _code_of(function: str, template: dict[str, Any]) -> str:
    code_uri = ROOT / template["Resources"][function]["Properties"]["CodeUri"]
    files = [*code_uri.rglob("*.py"), *(ROOT / "layers" / "regcred" / "regcred").rglob("*.py")]
    return "\n".join(p.read_text(encoding="utf-8") for p in files)


def test_the_code_emits_the_metrics_the_dashboard_and_alarms_use(template: dict[str, Any]) -> None:
    # The other side of the two tests above: each metric name is written in its function or the library.
    missing = [
        f"{metric} ({function})"
        for metric, (function, _) in EMITTED_METRICS.items()
        if f'"{metric}"' not in _code_of(function, template)
    ]
    assert missing == []


# ------------------------------------------------------------------------------------------------------
# Deployment hardening (README, "Deployment hardening"): off by default, switched on by parameters.

HARDENING_DEFAULTS = {
    "ManagedSecretsKey": "false",
    "BatchExecutionRoleArns": "",
    "VpcSubnetIds": "",
    "VpcSecurityGroupIds": "",
    "PermissionsBoundaryArn": "",
}
BOUNDARY = {"Fn::If": ["HasPermissionsBoundary", {"Ref": "PermissionsBoundaryArn"}, {"Ref": "AWS::NoValue"}]}
VIA_SECRETS_MANAGER = {"Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"}


def _evaluate(template: dict[str, Any], expression: Any, params: dict[str, str]) -> Any:
    """A condition (or a Rules assertion) as CloudFormation evaluates it for these parameter values (the
    defaults for the others)."""
    if isinstance(expression, str | bool | int):
        return expression
    if isinstance(expression, list):
        return [_evaluate(template, e, params) for e in expression]
    [(key, argument)] = expression.items()
    if key == "Ref":
        spec = template["Parameters"][argument]
        value = params.get(argument, str(spec.get("Default", "")))
        return value.split(",") if spec["Type"] == "CommaDelimitedList" else value
    if key == "Condition":
        return _evaluate(template, template["Conditions"][argument], params)
    values = _evaluate(template, argument, params)
    if key == "Fn::Join":
        return values[0].join(values[1])
    if key == "Fn::Equals":
        return values[0] == values[1]
    if key == "Fn::Not":
        return not values[0]
    if key == "Fn::And":
        return all(values)
    if key == "Fn::Or":
        return any(values)
    if key == "Fn::EachMemberEquals":
        return all(member == values[1] for member in values[0])
    raise AssertionError(f"cannot evaluate {key}")


def _condition(template: dict[str, Any], name: str, **params: str) -> bool:
    return bool(_evaluate(template, {"Condition": name}, params))


def _rule_failures(template: dict[str, Any], **params: str) -> list[str]:
    failures = []
    for rule in template["Rules"].values():
        if "RuleCondition" in rule and not _evaluate(template, rule["RuleCondition"], params):
            continue
        failures += [
            a["AssertDescription"] for a in rule["Assertions"] if not _evaluate(template, a["Assert"], params)
        ]
    return failures


def test_hardening_parameters_default_to_off(template: dict[str, Any]) -> None:
    params = template["Parameters"]
    for name, default in HARDENING_DEFAULTS.items():
        assert str(params[name]["Default"]) == default, name
    for condition in (
        "CreateManagedSecretsKey",
        "HasBatchExecutionRoles",
        "UseVpc",
        "HasPermissionsBoundary",
    ):
        assert _condition(template, condition) is False, condition
    assert _condition(template, "NoVpc") is True
    assert _rule_failures(template) == []


@pytest.mark.parametrize(
    ("params", "on"),
    [
        ({"ManagedSecretsKey": "true"}, {"CreateManagedSecretsKey"}),
        (
            {
                "ManagedSecretsKey": "true",
                "BatchExecutionRoleArns": "arn:aws:iam::123456789012:role/a,arn:aws:iam::123456789012:role/b",
            },
            {"CreateManagedSecretsKey", "HasBatchExecutionRoles"},
        ),
        ({"VpcSubnetIds": "subnet-1,subnet-2", "VpcSecurityGroupIds": "sg-1"}, {"UseVpc"}),
        ({"PermissionsBoundaryArn": "arn:aws:iam::123456789012:policy/boundary"}, {"HasPermissionsBoundary"}),
    ],
)
def test_hardening_conditions_switch_on_with_their_parameters(
    template: dict[str, Any], params: dict[str, str], on: set[str]
) -> None:
    switches = {"CreateManagedSecretsKey", "HasBatchExecutionRoles", "UseVpc", "HasPermissionsBoundary"}
    assert {c for c in switches if _condition(template, c, **params)} == on
    assert _condition(template, "NoVpc", **params) is ("UseVpc" not in on)
    assert _rule_failures(template, **params) == []


@pytest.mark.parametrize(
    ("params", "failure"),
    [
        ({"VpcSubnetIds": "subnet-1"}, "VpcSecurityGroupIds is required"),
        ({"VpcSecurityGroupIds": "sg-1"}, "VpcSubnetIds is required"),
        ({"BatchExecutionRoleArns": "arn:aws:iam::123456789012:role/a"}, "ManagedSecretsKey=true"),
    ],
)
def test_hardening_rules_refuse_half_a_setting(
    template: dict[str, Any], params: dict[str, str], failure: str
) -> None:
    failures = _rule_failures(template, **params)
    assert len(failures) == 1 and failure in failures[0], failures


def test_hardening_parameters_say_what_they_cost(template: dict[str, Any]) -> None:
    params = template["Parameters"]
    vpc = params["VpcSubnetIds"]["Description"]
    # Vendors and registries are on the internet; the AWS APIs need not be.
    assert "NAT" in vpc and "egress" in vpc and "VPC endpoints" in vpc
    for service in ("Secrets Manager", "Batch", "CloudWatch Logs", "SQS", "DynamoDB", "SNS", "KMS"):
        assert service in vpc, service
    assert "USD a month" in params["ManagedSecretsKey"]["Description"]
    assert "must exist" in params["BatchExecutionRoleArns"]["Description"]
    pattern = params["PermissionsBoundaryArn"]["AllowedPattern"]
    for good in (
        "",
        "arn:aws:iam::123456789012:policy/boundary",
        "arn:aws-us-gov:iam::123456789012:policy/a/b",
    ):
        assert re.fullmatch(pattern, good), good
    for bad in ("boundary", "arn:aws:iam::123456789012:role/boundary"):
        assert not re.fullmatch(pattern, bad), bad


def test_vpc_configuration_reaches_every_function(template: dict[str, Any]) -> None:
    glob = template["Globals"]["Function"]
    assert glob["VpcConfig"] == {
        "Fn::If": [
            "UseVpc",
            {"SubnetIds": {"Ref": "VpcSubnetIds"}, "SecurityGroupIds": {"Ref": "VpcSecurityGroupIds"}},
            {"Ref": "AWS::NoValue"},
        ]
    }
    for name, function in _resources(template, "AWS::Serverless::Function").items():
        assert "VpcConfig" not in function["Properties"], f"{name}: the Globals' VpcConfig must apply"
    # SAM attaches AWSLambdaVPCAccessExecutionRole to every function role whatever the condition; without
    # a VPC an explicit deny takes back what it grants.
    policy = template["Resources"]["NoVpcNetworkInterfacesPolicy"]
    assert policy["Type"] == "AWS::IAM::Policy" and policy["Condition"] == "NoVpc"
    assert sorted(r["Ref"] for r in policy["Properties"]["Roles"]) == sorted(f"{f}Role" for f in FUNCTIONS)
    [statement] = _as_list(policy["Properties"]["PolicyDocument"]["Statement"])
    assert statement["Effect"] == "Deny" and statement["Resource"] == "*"
    assert set(_as_list(statement["Action"])) == VPC_ENI_ACTIONS
    for subnets in ("", "subnet-1", "subnet-1,subnet-2"):
        params = {"VpcSubnetIds": subnets, "VpcSecurityGroupIds": "sg-1" if subnets else ""}
        assert _condition(template, "NoVpc", **params) is not _condition(template, "UseVpc", **params)


def test_permissions_boundary_on_every_role(template: dict[str, Any]) -> None:
    assert template["Globals"]["Function"]["PermissionsBoundary"] == BOUNDARY
    for name, function in _resources(template, "AWS::Serverless::Function").items():
        assert function["Properties"].get("PermissionsBoundary", BOUNDARY) == BOUNDARY, name
        assert "Role" not in function["Properties"], f"{name}: SAM's role gets the boundary, a given one not"
    roles = _resources(template, "AWS::IAM::Role")
    assert roles
    for name, role in roles.items():
        assert role["Properties"]["PermissionsBoundary"] == BOUNDARY, name


def test_stack_tags_reach_what_sam_generates(template: dict[str, Any]) -> None:
    assert template["Globals"]["Function"]["PropagateTags"] is True
    assert "sam.sh deploy --tags" in README.read_text(encoding="utf-8")


def test_managed_secrets_key(template: dict[str, Any]) -> None:
    key = template["Resources"][SECRETS_KEY]
    assert key["Type"] == "AWS::KMS::Key" and key["Condition"] == "CreateManagedSecretsKey"
    # The secrets outlive the stack: so does their key.
    assert key["DeletionPolicy"] == "Retain" and key["UpdateReplacePolicy"] == "Retain"
    assert key["Properties"]["EnableKeyRotation"] is True
    statements = _as_list(key["Properties"]["KeyPolicy"]["Statement"])
    plain = [s for s in statements if "Fn::If" not in s]
    conditional = [s["Fn::If"] for s in statements if "Fn::If" in s]
    root = {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
    admin = [s for s in plain if s["Principal"] == root]
    assert len(admin) == 1 and admin[0]["Action"] == "kms:*"
    [functions] = [s for s in plain if s["Principal"] != root]
    assert sorted(map(json.dumps, _as_list(functions["Principal"]["AWS"]))) == sorted(
        json.dumps({"Fn::GetAtt": [f"{f}Role", "Arn"]}) for f in FUNCTIONS
    )
    assert set(_as_list(functions["Action"])) == {"kms:Decrypt", "kms:GenerateDataKey"}
    assert _conditions(functions, "StringEquals")["kms:ViaService"] == VIA_SECRETS_MANAGER
    # The execution roles: decrypt only, through Secrets Manager only, and no statement without roles.
    [(condition, roles, otherwise)] = conditional
    assert condition == "HasBatchExecutionRoles" and _is_no_value(otherwise)
    assert roles["Principal"] == {"AWS": {"Ref": "BatchExecutionRoleArns"}}
    assert _as_list(roles["Action"]) == ["kms:Decrypt"]
    assert _conditions(roles, "StringEquals")["kms:ViaService"] == VIA_SECRETS_MANAGER
    alias = template["Resources"]["ManagedSecretsKmsKeyAlias"]
    assert alias["Condition"] == "CreateManagedSecretsKey"
    assert alias["Properties"]["TargetKeyId"] == {"Ref": SECRETS_KEY}
    assert _sub_text(alias["Properties"]["AliasName"]).startswith("alias/${AWS::StackName}/")


# ------------------------------------------------------------------------------------------------------
# layers/regcred/Makefile merges the per-runtime trees of the requirements (LAYER_TOOL merge): run on
# made-up trees, as make runs it (python -c "$LAYER_TOOL").

LAYER_VERSIONS = ("3.11", "3.12", "3.13")


def _layer_tool() -> str:
    text = LAYER_MAKEFILE.read_text(encoding="utf-8")
    match = re.search(r"^define LAYER_TOOL\n(.*?)^endef$", text, re.M | re.S)
    assert match, "layers/regcred/Makefile defines no LAYER_TOOL"
    code = match.group(1)
    # make expands the exported variable: a dollar sign would not reach Python as written.
    assert "$" not in code
    return code


def _run_layer_tool(*args: Path | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _layer_tool(), *map(str, args)], capture_output=True, text=True, check=False
    )


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _install_like_pip(root: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` under ``root``, with a RECORD in each *.dist-info for the files of its dist."""
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    for dist_info in {rel.split("/")[0] for rel in files if rel.split("/")[0].endswith(".dist-info")}:
        package = dist_info.split("-")[0]
        rows = [
            [rel, _record_hash(data), str(len(data))]
            for rel, data in files.items()
            if rel.split("/")[0] in (dist_info, package, f"{package}.py")
        ]
        rows.append([f"{dist_info}/RECORD", "", ""])
        with (root / dist_info / "RECORD").open("w", newline="") as f:
            csv.writer(f, lineterminator="\n").writerows(rows)


def _sbom(serial: str, components: list[str]) -> bytes:
    bom = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{serial}",
        "metadata": {"timestamp": f"2026-01-01T00:00:0{len(serial) % 10}Z"},
        "components": [{"name": c} for c in components],
    }
    return json.dumps(bom).encode()


def _runtime_tree(version: str) -> dict[str, bytes]:
    """What pip --target --python-version VERSION installs: a compiled and a pure distribution."""
    abi = version.replace(".", "")
    return {
        "fast/__init__.py": b"from fast._speed import go\n",
        f"fast/_speed.cpython-{abi}-x86_64-linux-gnu.so": f"ELF for cpython {abi}".encode(),
        "fast-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: fast\nVersion: 1.0\n\n",
        "fast-1.0.dist-info/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: maturin\nRoot-Is-Purelib: false\n"
            f"Tag: cp{abi}-cp{abi}-manylinux_2_17_x86_64\nTag: cp{abi}-cp{abi}-manylinux2014_x86_64\n"
        ).encode(),
        "fast-1.0.dist-info/sboms/fast.cyclonedx.json": _sbom(f"serial-{abi}", ["pyo3"]),
        "plain.py": b"PLAIN = 1\n",
        "plain-2.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: plain\nVersion: 2.0\n\n",
        "plain-2.0.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: flit\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }


def _merge(
    tmp_path: Path, change: Callable[[str, dict[str, bytes]], None] | None = None
) -> tuple[subprocess.CompletedProcess[str], Path]:
    stages = []
    for version in LAYER_VERSIONS:
        files = _runtime_tree(version)
        if change:
            change(version, files)
        _install_like_pip(tmp_path / "stage" / version, files)
        stages.append(tmp_path / "stage" / version)
    dest = tmp_path / "python"
    dest.mkdir()
    return _run_layer_tool("merge", dest, *stages), dest


def test_layer_merge_puts_each_runtimes_extension_modules_side_by_side(tmp_path: Path) -> None:
    done, dest = _merge(tmp_path)
    assert done.returncode == 0, done.stderr
    assert "fast/_speed" in done.stdout
    for version in LAYER_VERSIONS:
        abi = version.replace(".", "")
        assert (
            dest / f"fast/_speed.cpython-{abi}-x86_64-linux-gnu.so"
        ).read_bytes() == f"ELF for cpython {abi}".encode()
    assert (dest / "fast/__init__.py").is_file() and (dest / "plain.py").read_bytes() == b"PLAIN = 1\n"
    # The compiled distribution's wheel metadata names every runtime's tags, in order.
    tags = [
        line
        for line in (dest / "fast-1.0.dist-info/WHEEL").read_text().splitlines()
        if line.startswith("Tag:")
    ]
    assert tags == [
        f"Tag: cp{a}-cp{a}-{p}"
        for a in ("311", "312", "313")
        for p in ("manylinux_2_17_x86_64", "manylinux2014_x86_64")
    ]
    # RECORD lists the merged files, with their hashes: every runtime's module, the merged WHEEL.
    with (dest / "fast-1.0.dist-info/RECORD").open(newline="") as f:
        rows = {row[0]: row[1:] for row in csv.reader(f)}
    files = {str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()}
    assert set(rows) == {f for f in files if f.startswith("fast")}
    for rel, (digest, size) in rows.items():
        if rel.endswith("/RECORD"):
            assert (digest, size) == ("", ""), rel
        else:
            data = (dest / rel).read_bytes()
            assert (digest, size) == (_record_hash(data), str(len(data))), rel
    # The pure distribution's metadata is the same for every runtime: copied as it is.
    assert (dest / "plain-2.0.dist-info/RECORD").read_bytes() == (
        tmp_path / "stage/3.11/plain-2.0.dist-info/RECORD"
    ).read_bytes()


def _differs(version: str, files: dict[str, bytes]) -> None:
    if version == "3.12":
        files["plain.py"] = b"PLAIN = 2\n"


def _other_release(version: str, files: dict[str, bytes]) -> None:
    if version == "3.13":
        files["plain-2.0.dist-info/METADATA"] = b"Metadata-Version: 2.1\nName: plain\nVersion: 2.1\n\n"


def _only_some(version: str, files: dict[str, bytes]) -> None:
    if version == "3.11":
        files["backport.py"] = b"B = 1\n"


def _no_module(version: str, files: dict[str, bytes]) -> None:
    if version == "3.13":
        del files["fast/_speed.cpython-313-x86_64-linux-gnu.so"]


def _foreign_module(version: str, files: dict[str, bytes]) -> None:
    if version == "3.12":
        files["fast/_speed.cpython-311-x86_64-linux-gnu.so"] = b"ELF for cpython 311"


def _abi3_differs(version: str, files: dict[str, bytes]) -> None:
    files["fast/_other.abi3.so"] = f"abi3 built by {version}".encode()


def _sbom_differs(version: str, files: dict[str, bytes]) -> None:
    if version == "3.13":
        files["fast-1.0.dist-info/sboms/fast.cyclonedx.json"] = _sbom("serial-313", ["pyo3", "extra-crate"])


def _wheel_differs(version: str, files: dict[str, bytes]) -> None:
    if version == "3.12":
        files["fast-1.0.dist-info/WHEEL"] = files["fast-1.0.dist-info/WHEEL"].replace(
            b"maturin", b"setuptools"
        )


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (_differs, "plain.py: differs between python 3.11 3.12 3.13"),
        (_other_release, "plain-2.0.dist-info/METADATA: differs"),
        (_only_some, "backport.py: only for python 3.11, not 3.12 3.13"),
        (_no_module, "fast/_speed: no extension module for python 3.13"),
        (_foreign_module, "fast/_speed.cpython-311-x86_64-linux-gnu.so: in the tree of python 3.12"),
        (_abi3_differs, "fast/_other.abi3.so: differs"),
        (_sbom_differs, "fast-1.0.dist-info/sboms/fast.cyclonedx.json: the SBOMs differ"),
        (_wheel_differs, "fast-1.0.dist-info/WHEEL: differs beyond its tags"),
    ],
)
def test_layer_merge_fails_unless_only_extension_modules_differ(
    tmp_path: Path, change: Callable[[str, dict[str, bytes]], None], problem: str
) -> None:
    done, _ = _merge(tmp_path, change)
    assert done.returncode == 1, done.stdout
    assert "do not merge" in done.stderr and problem in done.stderr, done.stderr


def test_layer_merge_takes_an_abi3_module_for_every_runtime(tmp_path: Path) -> None:
    def abi3(version: str, files: dict[str, bytes]) -> None:
        files["fast/_other.abi3.so"] = b"one abi3 build"

    done, dest = _merge(tmp_path, abi3)
    assert done.returncode == 0, done.stderr
    assert (dest / "fast/_other.abi3.so").read_bytes() == b"one abi3 build"


def test_layer_constraints_pin_the_first_runtimes_releases(tmp_path: Path) -> None:
    _install_like_pip(tmp_path, _runtime_tree("3.11"))
    done = _run_layer_tool("constraints", tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["fast==1.0", "plain==2.0"]
