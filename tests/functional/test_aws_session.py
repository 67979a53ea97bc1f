"""The program's own AWS clients follow the stack's AWS provider settings (infra.aws_session), with moto's STS."""

from __future__ import annotations

import contextvars
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pulumi
import pytest
from moto import mock_aws

from infra.aws_session import AssumeRole, AwsClients, AwsSettingsError, provider_settings
from infra.config import parse_stack_config
from infra.context import StackContext
from infra.model_versions import RegistryVersions
from verify.mock_engine import read_stack_values

REGION = "eu-west-1"
DEPLOYER = "arn:aws:iam::111111111111:role/deployer"
WORKLOAD = "arn:aws:iam::222222222222:role/workload-deployer"


def clients(**values: Any) -> AwsClients:
    """Clients for a stack whose ``aws:`` keys are ``values`` (structured values given as Python objects)."""
    raw = {f"aws:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in {"region": REGION, **values}.items()}
    return AwsClients(provider_settings(raw), region=REGION)


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


class RecordingClients(AwsClients):
    """AwsClients that record every STS AssumeRole request as botocore sends it."""

    def __init__(self, base: AwsClients) -> None:
        super().__init__(base.settings, region=base.region)
        self.requests: list[dict[str, Any]] = []

    def _base_session(self) -> Any:
        session = super()._base_session()
        session.events.register("provide-client-params.sts.AssumeRole", self._record)
        return session

    def _record(self, params: dict[str, Any], **_: Any) -> None:
        self.requests.append(dict(params))


# --- no aws: keys: today's client ------------------------------------------------------------------


def test_without_provider_keys_the_client_is_boto3s_default_for_the_region(aws: None) -> None:
    client = clients().client("sagemaker")
    default = boto3.client("sagemaker", region_name=REGION)
    assert (client.meta.endpoint_url, client.meta.region_name) == (default.meta.endpoint_url, REGION)
    identity = clients().client("sts").get_caller_identity()
    assert identity["Arn"] == boto3.client("sts", region_name=REGION).get_caller_identity()["Arn"]


# --- profile and shared files ----------------------------------------------------------------------


def write_profile(tmp_path: Path, profile: str, access_key: str) -> tuple[Path, Path]:
    config = tmp_path / "config"
    config.write_text(f"[profile {profile}]\nregion = {REGION}\n")
    credentials = tmp_path / "credentials"
    credentials.write_text(f"[{profile}]\naws_access_key_id = {access_key}\naws_secret_access_key = secret\n")
    return config, credentials


def test_the_profile_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config, credentials = write_profile(tmp_path, "platform-deployer", "AKIAPROFILEEXAMPLE01")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    session = clients(profile="platform-deployer").session()
    assert session.profile_name == "platform-deployer"
    assert session.get_credentials().access_key == "AKIAPROFILEEXAMPLE01"


def test_the_shared_files_of_the_stack_are_read(tmp_path: Path) -> None:
    config, credentials = write_profile(tmp_path, "ci", "AKIASHAREDFILES00001")
    session = clients(
        profile="ci", sharedConfigFiles=[str(config)], sharedCredentialsFiles=[str(credentials)]
    ).session()
    assert session.get_credentials().access_key == "AKIASHAREDFILES00001"


def test_an_unknown_profile_fails_like_the_provider_would(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.exceptions import ProfileNotFound

    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "absent"))
    with pytest.raises(ProfileNotFound, match="no-such-profile"):
        clients(profile="no-such-profile").client("sagemaker")


# --- endpoints -------------------------------------------------------------------------------------


def test_the_sagemaker_endpoint_reaches_the_client() -> None:
    client = clients(endpoints=[{"sagemaker": "http://127.0.0.1:5000", "s3": "http://127.0.0.1:4566"}]).client(
        "sagemaker"
    )
    assert client.meta.endpoint_url == "http://127.0.0.1:5000"


def test_the_local_stack_reads_sagemaker_on_its_emulator() -> None:
    local = AwsClients(provider_settings(read_stack_values("local")), region=REGION)
    assert local.client("sagemaker").meta.endpoint_url == "http://127.0.0.1:5000"
    assert local.client("sts").meta.endpoint_url == "http://127.0.0.1:4566"


# --- assumed roles ---------------------------------------------------------------------------------


def test_assume_roles_calls_sts_assume_role_with_the_role(aws: None) -> None:
    recording = RecordingClients(
        clients(assumeRoles=[{"roleArn": DEPLOYER, "sessionName": "ci", "externalId": "ext-123", "duration": "1h"}])
    )
    identity = recording.client("sts").get_caller_identity()
    assert identity["Arn"] == "arn:aws:sts::111111111111:assumed-role/deployer/ci"
    assert recording.requests == [
        {"RoleArn": DEPLOYER, "RoleSessionName": "ci", "ExternalId": "ext-123", "DurationSeconds": 3600}
    ]


def test_assume_roles_are_chained_in_order(aws: None) -> None:
    chained = clients(assumeRoles=[{"roleArn": DEPLOYER}, {"roleArn": WORKLOAD, "sessionName": "second"}])
    identity = chained.client("sts").get_caller_identity()
    assert identity["Arn"] == "arn:aws:sts::222222222222:assumed-role/workload-deployer/second"


def test_sagemaker_clients_act_in_the_assumed_roles_account(aws: None) -> None:
    group = "acme-prod-customer-churn"
    deployer = clients(assumeRoles=[{"roleArn": WORKLOAD}]).client("sagemaker")
    deployer.create_model_package_group(ModelPackageGroupName=group)
    assert deployer.describe_model_package_group(ModelPackageGroupName=group)["ModelPackageGroupArn"].startswith(
        f"arn:aws:sagemaker:{REGION}:222222222222:"
    )
    caller_groups = boto3.client("sagemaker", region_name=REGION).list_model_package_groups()
    assert caller_groups["ModelPackageGroupSummaryList"] == []


def test_an_assume_role_entry_becomes_the_sts_request() -> None:
    (role,) = provider_settings(
        {
            "aws:assumeRoles": json.dumps(
                [
                    {
                        "roleArn": DEPLOYER,
                        "duration": "1h30m",
                        "policyArns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"],
                        "tags": {"team": "ml"},
                        "transitiveTagKeys": ["team"],
                        "sourceIdentity": "ci-bot",
                    }
                ]
            )
        }
    ).assume_roles
    assert role.request() == {
        "RoleArn": DEPLOYER,
        "RoleSessionName": "mlops-platform-program",
        "DurationSeconds": 5400,
        "PolicyArns": [{"arn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}],
        "SourceIdentity": "ci-bot",
        "Tags": [{"Key": "team", "Value": "ml"}],
        "TransitiveTagKeys": ["team"],
    }


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"aws:assumeRoles": '[{"roleArn": "deployer"}]'}, r"aws:assumeRoles\[0\]\.roleArn: expected an IAM role ARN"),
        ({"aws:assumeRoles": f'[{{"roleArn": "{DEPLOYER}", "duration": "1 hour"}}]'}, r"\.duration: got '1 hour'"),
        ({"aws:assumeRoles": f'[{{"roleArn": "{DEPLOYER}", "duration": "10m"}}]'}, "between 15m and 12h"),
        ({"aws:assumeRoles": f'[{{"roleArn": "{DEPLOYER}", "role": "x"}}]'}, r"unknown keys \['role'\]"),
        ({"aws:endpoints": '{"sagemaker": "http://127.0.0.1:5000"}'}, "aws:endpoints: expected a list"),
        ({"aws:sharedConfigFiles": '["/a", "/b"]'}, "aws:sharedConfigFiles: boto3 reads one file, got 2"),
        ({"aws:assumeRoleWithWebIdentity": json.dumps({"roleArn": DEPLOYER})}, "aws:assumeRoleWithWebIdentity"),
        ({"aws:accessKey": "AKIAEXAMPLE"}, "aws:accessKey and aws:secretKey must be set together"),
    ],
)
def test_settings_the_program_cannot_honour_are_refused_naming_the_key(values: dict[str, str], message: str) -> None:
    with pytest.raises(AwsSettingsError, match=message):
        provider_settings(values)


def test_a_secret_key_never_appears_in_the_settings_repr() -> None:
    settings = provider_settings({"aws:accessKey": "AKIAEXAMPLE", "aws:secretKey": "very-secret"})
    assert "very-secret" not in repr(settings)
    assert "ext-secret" not in repr(AssumeRole(role_arn=DEPLOYER, external_id="ext-secret"))


# --- the program's default version source ----------------------------------------------------------


def test_the_stack_context_reads_the_registry_with_the_stacks_provider_settings() -> None:
    values = read_stack_values("local")
    config = parse_stack_config(values, "local")

    def build() -> StackContext:
        pulumi.runtime.set_all_config(values)  # as the Pulumi CLI hands the stack to the program
        return StackContext.from_config(config)

    context = contextvars.copy_context().run(build)  # the config change stays inside this test
    assert isinstance(context.versions, RegistryVersions)
    assert context.versions.clients is not None
    assert context.versions.clients.client("sagemaker").meta.endpoint_url == "http://127.0.0.1:5000"
