"""Static checks of template.yaml: what `sam validate --lint` cannot know and a deploy would not reveal.

cfn-lint checks the CloudFormation schema; these tests check regcred's own rules: Secrets Manager may
invoke the rotation function (and only for this account), every secret permission is scoped to the
tagged secrets, the handlers and the layer exist on disk, and the layer does not bundle boto3.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"

ROTATE = "RotateFunction"
ROTATE_PERMISSION = "RotateFunctionInvokePermission"

# Actions IAM only grants on Resource "*": they act on no resource, or the service has no
# resource-level permissions for them. Anything else on "*" is a mistake.
STAR_RESOURCE_ACTIONS = {
    "secretsmanager:GetRandomPassword",
    "secretsmanager:ListSecrets",
    "batch:DescribeJobDefinitions",
    "batch:DescribeJobs",
    "batch:DescribeJobQueues",
    "batch:ListJobs",
    "cloudwatch:PutMetricData",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
}
MANAGED_TAG = "secretsmanager:ResourceTag/regcred:managed"
ADMIN_TAG = "secretsmanager:ResourceTag/regcred:admin"
# What a role may do with an admin secret (the vendor's administrative credential): read it, no more.
ADMIN_SECRET_ACTIONS = {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that reads CloudFormation short forms (!Ref, !GetAtt, !Sub, ...) as their long form."""


def _construct_cfn_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:
        raise yaml.constructor.ConstructorError(None, None, f"unexpected node for !{suffix}", node.start_mark)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "Condition":
        return {"Condition": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_cfn_tag)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    loader = _CfnLoader(path.read_text(encoding="utf-8"))
    try:
        data = loader.get_single_data()
    finally:
        loader.dispose()
    assert isinstance(data, dict)
    return data


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


def _statements(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every inline IAM statement of the template, with the logical id that owns it."""
    found: list[tuple[str, dict[str, Any]]] = []
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
            found.extend((name, s) for s in _as_list(document.get("Statement", [])))
    return found


def _resource_text(resource: Any) -> str:
    """An IAM Resource as text: a literal, or the template string of an !Sub."""
    if isinstance(resource, str):
        return resource
    if isinstance(resource, dict) and "Fn::Sub" in resource:
        sub = resource["Fn::Sub"]
        return sub if isinstance(sub, str) else sub[0]
    return json.dumps(resource)


def _conditions(statement: dict[str, Any], operator: str) -> dict[str, Any]:
    return statement.get("Condition", {}).get(operator, {})


def test_template_parses_with_short_form_tags(template: dict[str, Any]) -> None:
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    assert template["Outputs"]["RotateFunctionArn"]["Value"] == {"Fn::GetAtt": [ROTATE, "Arn"]}


def test_runtime_parameter(template: dict[str, Any]) -> None:
    runtime = template["Parameters"]["Runtime"]
    assert runtime["Default"] == "python3.13"
    assert set(runtime["AllowedValues"]) == {"python3.11", "python3.12", "python3.13"}
    for name, function in _resources(template, "AWS::Serverless::Function").items():
        assert _function_property(template, function, "Runtime") == {"Ref": "Runtime"}, name


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


def test_secret_permissions_are_scoped_to_tagged_secrets(template: dict[str, Any]) -> None:
    checked = 0
    for owner, statement in _statements(template):
        actions = set(_as_list(statement["Action"]))
        secret_actions = {a for a in actions if a.startswith("secretsmanager:")} - STAR_RESOURCE_ACTIONS
        if statement["Effect"] != "Allow" or not secret_actions:
            continue
        where = f"{owner} {statement.get('Sid')}"
        assert secret_actions == actions, f"{where}: keep secret actions in statements of their own"
        for resource in _as_list(statement["Resource"]):
            assert re.search(r":secretsmanager:.*:secret:", _resource_text(resource)), where
        tags = _conditions(statement, "StringEquals")
        marks = {k: str(v).lower() for k, v in tags.items() if k in (MANAGED_TAG, ADMIN_TAG)}
        assert marks in ({MANAGED_TAG: "true"}, {ADMIN_TAG: "true"}), f"{where}: condition {tags}"
        if ADMIN_TAG in marks:
            assert actions <= ADMIN_SECRET_ACTIONS, f"{where}: admin secrets are read-only"
        checked += 1
    assert checked, "no Secrets Manager statement found"


def test_tagging_is_limited_to_regcred_status_tags(template: dict[str, Any]) -> None:
    tagging = [
        (owner, s)
        for owner, s in _statements(template)
        if {"secretsmanager:TagResource", "secretsmanager:UntagResource"} & set(_as_list(s["Action"]))
    ]
    assert tagging
    for owner, statement in tagging:
        where = f"{owner} {statement.get('Sid')}"
        assert _conditions(statement, "ForAllValues:StringLike")["aws:TagKeys"] == ["regcred:*"], where
        # ForAllValues holds vacuously when the request carries no tag keys.
        assert str(_conditions(statement, "Null")["aws:TagKeys"]).lower() == "false", where
        # The role must not be able to mark more secrets as managed or admin.
        protected = set(_as_list(_conditions(statement, "ForAllValues:StringNotEquals")["aws:TagKeys"]))
        assert {"regcred:managed", "regcred:admin"} <= protected, where


def test_kms_only_through_secrets_manager(template: dict[str, Any]) -> None:
    for owner, statement in _statements(template):
        if not any(a.startswith("kms:") for a in _as_list(statement["Action"])):
            continue
        via = _conditions(statement, "StringEquals").get("kms:ViaService")
        assert via == {"Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"}, owner


def test_handlers_exist(template: dict[str, Any]) -> None:
    functions = _resources(template, "AWS::Serverless::Function")
    assert ROTATE in functions
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


def test_rotation_function_never_records_secrets(template: dict[str, Any]) -> None:
    env = _function_env(template, template["Resources"][ROTATE])
    assert env["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"
    assert env.get("POWERTOOLS_LOGGER_LOG_EVENT", "false") == "false"
    # Declared so that `sam local invoke --env-vars` can point the function at a local emulator.
    assert env["AWS_ENDPOINT_URL"] == {"Ref": "AwsEndpointUrl"}
    assert template["Parameters"]["AwsEndpointUrl"]["Default"] == ""


def test_layer_is_built_from_the_library(template: dict[str, Any]) -> None:
    layers = _resources(template, "AWS::Serverless::LayerVersion")
    layer = layers["RegcredLayer"]
    content = ROOT / layer["Properties"]["ContentUri"]
    assert (content / "requirements.txt").is_file()
    assert (content / "regcred" / "__init__.py").is_file()
    assert layer["Metadata"]["BuildMethod"] == {"Ref": "Runtime"}
    assert {"Ref": "Runtime"} in layer["Properties"]["CompatibleRuntimes"]
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


def test_log_group_and_alarm_follow_the_function(template: dict[str, Any]) -> None:
    groups = _resources(template, "AWS::Logs::LogGroup")
    names = {g["Properties"]["LogGroupName"]["Fn::Sub"]: g for g in groups.values()}
    assert names["/aws/lambda/${RotateFunction}"]["Properties"]["RetentionInDays"] == 30
    alarms = _resources(template, "AWS::CloudWatch::Alarm").values()
    watched = [
        a
        for a in alarms
        if a["Properties"].get("MetricName") == "Errors"
        and {"Name": "FunctionName", "Value": {"Ref": ROTATE}} in a["Properties"].get("Dimensions", [])
    ]
    assert watched, "no alarm on the rotation function's Errors"
