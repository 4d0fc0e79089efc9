"""Static checks of template.yaml: what `sam validate --lint` cannot know and a deploy would not reveal.

cfn-lint checks the CloudFormation schema; these tests check regcred's own rules: Secrets Manager may
invoke the rotation function (and only for this account), every secret permission is scoped to the
tagged secrets, the handlers and the layer exist on disk, the layer does not bundle boto3 and serves every
Runtime the functions may get (its Makefile's merge of the per-runtime trees is run on made-up trees), the
production template declares no emulator endpoint (its development copy does). For the
remediation: the rules match the failure events, nothing EventBridge or Lambda gives up on is lost
(dead-letter queues, alarms on them), and each permission stays as narrow as its API allows.
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

ROTATE = "RotateFunction"
ROTATE_PERMISSION = "RotateFunctionInvokePermission"
REMEDIATE = "RemediateFunction"
EVENTS_DLQ = "EventsDeadLetterQueue"
FAILURE_QUEUE = "RemediateFailureQueue"
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


def test_functions_may_write_only_bookkeeping_tags_on_secrets(template: dict[str, Any]) -> None:
    from regcred.config import BOOKKEEPING_TAGS

    tagging = [
        (owner, s)
        for owner, s in _statements(template)
        if {"secretsmanager:TagResource", "secretsmanager:UntagResource"} & set(_as_list(s["Action"]))
    ]
    assert tagging
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
    assert {ROTATE, REMEDIATE} <= set(functions)
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
    assert {ROTATE, REMEDIATE} <= set(functions)
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
    assert {ROTATE, REMEDIATE} <= set(functions)
    for name in functions:
        assert names[f"/aws/lambda/${{{name}}}"]["Properties"]["RetentionInDays"] == 30, name
        watched = [
            a
            for a in alarms
            if a["Properties"].get("MetricName") == "Errors"
            and {"Name": "FunctionName", "Value": {"Ref": name}} in a["Properties"].get("Dimensions", [])
        ]
        assert watched, f"no alarm on {name}'s Errors"


def test_every_alarm_notifies_the_topic(template: dict[str, Any]) -> None:
    alarms = _resources(template, "AWS::CloudWatch::Alarm")
    assert alarms
    for name, alarm in alarms.items():
        assert {"Ref": TOPIC} in alarm["Properties"].get("AlarmActions", []), name


def _alarms_on(template: dict[str, Any], metric: str, dimension: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        a["Properties"]
        for a in _resources(template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == metric and dimension in a["Properties"].get("Dimensions", [])
    ]


def test_dead_letter_queues_alarm_on_the_first_message(template: dict[str, Any]) -> None:
    for queue in (EVENTS_DLQ, FAILURE_QUEUE):
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


def test_every_rule_retries_then_dead_letters(template: dict[str, Any]) -> None:
    rules = _rules(template)
    assert len(rules) >= 2
    permissions = _resources(template, "AWS::Lambda::Permission").values()
    for name, rule in rules.items():
        targets = rule["Properties"]["Targets"]
        assert targets, name
        for target in targets:
            assert target["Arn"] == {"Fn::GetAtt": [REMEDIATE, "Arn"]}, name
            assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": [EVENTS_DLQ, "Arn"]}, name
            assert target["RetryPolicy"] == RULE_RETRY_POLICY, name
        # EventBridge may invoke the function only for this rule (confused-deputy guard).
        allowed = [
            p["Properties"]
            for p in permissions
            if p["Properties"]["Principal"] == "events.amazonaws.com"
            and p["Properties"]["SourceArn"] == {"Fn::GetAtt": [name, "Arn"]}
        ]
        assert len(allowed) == 1, f"{name}: no lambda permission for the rule"
        assert allowed[0]["FunctionName"] in ({"Fn::GetAtt": [REMEDIATE, "Arn"]}, {"Ref": REMEDIATE}), name
        assert allowed[0]["Action"] == "lambda:InvokeFunction", name


def test_dead_letter_queue_accepts_only_the_rules(template: dict[str, Any]) -> None:
    policies = [
        p["Properties"]
        for p in _resources(template, "AWS::SQS::QueuePolicy").values()
        if {"Ref": EVENTS_DLQ} in p["Properties"]["Queues"]
    ]
    assert len(policies) == 1, "EventBridge cannot write to a dead-letter queue without a queue policy"
    statements = _as_list(policies[0]["PolicyDocument"]["Statement"])
    assert statements
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert statement["Principal"] == {"Service": "events.amazonaws.com"}
        assert _as_list(statement["Action"]) == ["sqs:SendMessage"]
        assert statement["Resource"] == {"Fn::GetAtt": [EVENTS_DLQ, "Arn"]}
        sources = _as_list(_conditions(statement, "ArnEquals")["aws:SourceArn"])
        assert sorted(map(json.dumps, sources)) == sorted(
            json.dumps({"Fn::GetAtt": [name, "Arn"]}) for name in _rules(template)
        )


def test_failed_invocations_go_to_the_failure_queue(template: dict[str, Any]) -> None:
    config = template["Resources"][REMEDIATE]["Properties"]["EventInvokeConfig"]
    assert config["MaximumRetryAttempts"] == 2
    # Type SQS: SAM also grants the function's role sqs:SendMessage on the queue.
    assert config["DestinationConfig"]["OnFailure"] == {
        "Type": "SQS",
        "Destination": {"Fn::GetAtt": [FAILURE_QUEUE, "Arn"]},
    }


def test_queues_keep_messages_two_weeks_encrypted(template: dict[str, Any]) -> None:
    queues = _resources(template, "AWS::SQS::Queue")
    assert {EVENTS_DLQ, FAILURE_QUEUE} <= set(queues)
    for name, queue in queues.items():
        assert queue["Properties"]["MessageRetentionPeriod"] == 1209600, name
        assert queue["Properties"]["SqsManagedSseEnabled"] is True, name


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
    assert _function_property(template, function, "Timeout") == 60
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
    assert REMEDIATE in rotators
    invokers = _granting(template, "lambda:InvokeFunction")
    for owner, statement in invokers:
        assert _as_list(statement["Resource"]) == [{"Fn::GetAtt": [ROTATE, "Arn"]}], owner
    assert rotators <= {owner for owner, _ in invokers}


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
    assert outputs["RemediateFailureQueueUrl"]["Value"] == {"Ref": FAILURE_QUEUE}
    assert outputs["CoalesceTableName"]["Value"] == {"Ref": COALESCE_TABLE}


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
