"""A fake of iam:SimulatePrincipalPolicy (IAM Query API), which moto 5.2 does not implement.

It evaluates a role's inline and attached policies as stored in moto: Allow/Deny, Action and
Resource with wildcards; statements with NotAction, NotResource or Condition are ignored.
"""

from __future__ import annotations

import fnmatch
import json
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape


def _listify(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def evaluate(documents: Sequence[dict[str, Any]], action: str, resource: str) -> str:
    """IAM's identity-policy decision: an explicit Deny wins, then any Allow, else implicitDeny."""
    allowed = False
    for document in documents:
        statements = document.get("Statement") or []
        for statement in [statements] if isinstance(statements, dict) else statements:
            if any(k in statement for k in ("NotAction", "NotResource", "Condition")):
                continue  # not modelled by this fake
            actions = [a.lower() for a in _listify(statement.get("Action"))]
            if not any(fnmatch.fnmatchcase(action.lower(), a) for a in actions):
                continue
            if not any(fnmatch.fnmatchcase(resource, r) for r in _listify(statement.get("Resource"))):
                continue
            if statement.get("Effect") == "Deny":
                return "explicitDeny"
            allowed = allowed or statement.get("Effect") == "Allow"
    return "allowed" if allowed else "implicitDeny"


class IamSimulator:
    """iam:SimulatePrincipalPolicy over HTTP (Query protocol), reading the role's policies from moto."""

    def __init__(self, moto_iam: Any) -> None:
        self.moto_iam = moto_iam
        self.calls: list[dict[str, list[str]]] = []
        simulator = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                status, body = simulator.answer(form)
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> IamSimulator:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def _error(status: int, code: str, message: str) -> tuple[int, str]:
        return status, (
            "<ErrorResponse><Error><Type>Sender</Type>"
            f"<Code>{code}</Code><Message>{escape(message)}</Message></Error>"
            "<RequestId>fake</RequestId></ErrorResponse>"
        )

    def _documents(self, role_name: str) -> list[dict[str, Any]]:
        iam = self.moto_iam
        docs = [
            iam.get_role_policy(RoleName=role_name, PolicyName=name)["PolicyDocument"]
            for name in iam.list_role_policies(RoleName=role_name)["PolicyNames"]
        ]
        for attached in iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]:
            policy = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
            version = iam.get_policy_version(
                PolicyArn=attached["PolicyArn"], VersionId=policy["DefaultVersionId"]
            )
            docs.append(version["PolicyVersion"]["Document"])
        return [json.loads(d) if isinstance(d, str) else d for d in docs]

    def answer(self, form: dict[str, list[str]]) -> tuple[int, str]:
        self.calls.append(form)
        if form.get("Action") != ["SimulatePrincipalPolicy"]:
            return self._error(400, "InvalidAction", "only SimulatePrincipalPolicy is faked")
        source = form.get("PolicySourceArn", [""])[0]
        role_name = source.rsplit("/", 1)[-1]
        if ":role/" not in source:
            return self._error(400, "InvalidInput", "this fake simulates roles only")
        try:
            documents = self._documents(role_name)
        except self.moto_iam.exceptions.NoSuchEntityException:
            return self._error(404, "NoSuchEntity", f"The role with name {role_name} cannot be found.")
        actions = [v for k, vs in sorted(form.items()) if k.startswith("ActionNames.member.") for v in vs]
        resources = [v for k, vs in sorted(form.items()) if k.startswith("ResourceArns.member.") for v in vs]
        members = []
        for action in actions:
            for resource in resources or ["*"]:
                decision = evaluate(documents, action, resource)
                members.append(
                    "<member>"
                    f"<EvalActionName>{escape(action)}</EvalActionName>"
                    f"<EvalResourceName>{escape(resource)}</EvalResourceName>"
                    f"<EvalDecision>{decision}</EvalDecision>"
                    "<MatchedStatements/><MissingContextValues/>"
                    "</member>"
                )
        return 200, (
            '<SimulatePrincipalPolicyResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
            "<SimulatePrincipalPolicyResult><IsTruncated>false</IsTruncated>"
            f"<EvaluationResults>{''.join(members)}</EvaluationResults>"
            "</SimulatePrincipalPolicyResult>"
            "<ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata>"
            "</SimulatePrincipalPolicyResponse>"
        )
