"""The Glue catalog layer, over every stack file (Pulumi mocks)."""

from __future__ import annotations

import json
import re
from typing import Any

from infra.catalog import drift_report_models
from infra.context import StackContext
from infra.naming import REQUIRED_TAG_KEYS, Kind
from infra.types import ZONE_NAMES
from tests.support.types import CATALOG, CRAWLER, DATABASE, ROLE, ROLE_POLICY, SECURITY_CONFIGURATION
from verify.mock_engine import OfflinePlan, PlannedResource, read_stack_values, run_program

TABLE = "aws:glue/catalogTable:CatalogTable"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"


# --- helpers ----------------------------------------------------------------------------------


def _in_catalog(plan: OfflinePlan, type_token: str) -> list[PlannedResource]:
    return [r for r in plan.of_type(type_token) if r.component == CATALOG]


def _zone_of_database(plan: OfflinePlan) -> dict[str, str]:
    return {name: zone for zone, name in plan.outputs["glueDatabases"].items()}


def _bucket(plan: OfflinePlan, zone: str) -> str:
    return plan.outputs["lakeBuckets"][zone]


def _crawler_zone(plan: OfflinePlan, crawler: PlannedResource) -> str:
    return _zone_of_database(plan)[crawler.inputs["databaseName"]]


def _crawler_policy(plan: OfflinePlan, crawler: PlannedResource) -> list[dict[str, Any]]:
    role_name = crawler.inputs["role"].split("/")[-1]
    policies = [p for p in plan.of_type(ROLE_POLICY) if p.inputs["role"] == role_name]
    assert len(policies) == 1, f"crawler role {role_name} has {len(policies)} inline policies"
    return json.loads(policies[0].inputs["policy"])["Statement"]


def _resources(statement: dict[str, Any]) -> list[str]:
    resources = statement["Resource"]
    return [resources] if isinstance(resources, str) else list(resources)


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def _catalog_with(stack: str, **changes: Any) -> dict[str, Any]:
    """The stack file's ``mlops:catalog`` value with some keys replaced (for ``run_program`` overrides)."""
    catalog = json.loads(read_stack_values(stack)["mlops:catalog"])
    catalog.update(changes)
    return catalog


# --- databases --------------------------------------------------------------------------------


def test_one_database_per_zone(plan: OfflinePlan) -> None:
    assert sorted(plan.outputs["glueDatabases"]) == sorted(ZONE_NAMES)
    assert len(_in_catalog(plan, DATABASE)) == len(ZONE_NAMES)


def test_database_names_are_valid_glue_names(plan: OfflinePlan) -> None:
    naming = StackContext.from_config(plan.config).naming
    for zone, name in plan.outputs["glueDatabases"].items():
        assert name == naming.name(zone, Kind.GLUE)
        assert re.fullmatch(r"[a-z0-9_]{1,255}", name), name


def test_databases_are_located_at_their_zone_bucket(plan: OfflinePlan) -> None:
    zones = _zone_of_database(plan)
    for database in _in_catalog(plan, DATABASE):
        zone = zones[database.inputs["name"]]
        assert database.inputs["locationUri"] == f"s3://{_bucket(plan, zone)}/"


def test_databases_are_protected_and_retained_as_the_stack_says(plan: OfflinePlan) -> None:
    for database in _in_catalog(plan, DATABASE):
        assert database.protect is plan.config.protect_stateful_resources, database.name
        assert database.retain_on_delete is plan.config.retain_stateful_on_delete, database.name


def test_databases_and_crawlers_carry_the_required_tags(plan: OfflinePlan) -> None:
    for resource in [*_in_catalog(plan, DATABASE), *_in_catalog(plan, CRAWLER)]:
        missing = set(REQUIRED_TAG_KEYS) - set(resource.inputs.get("tags") or {})
        assert not missing, f"{resource.name} lacks tags {sorted(missing)}"


# --- security configuration -------------------------------------------------------------------


def test_security_configuration_encrypts_everything_with_the_platform_key(plan: OfflinePlan) -> None:
    (security,) = _in_catalog(plan, SECURITY_CONFIGURATION)
    encryption = security.inputs["encryptionConfiguration"]
    key = plan.outputs["kmsKeyArn"]
    assert encryption["s3Encryption"] == {"s3EncryptionMode": "SSE-KMS", "kmsKeyArn": key}
    assert encryption["cloudwatchEncryption"] == {"cloudwatchEncryptionMode": "SSE-KMS", "kmsKeyArn": key}
    assert encryption["jobBookmarksEncryption"] == {"jobBookmarksEncryptionMode": "CSE-KMS", "kmsKeyArn": key}


# --- crawlers ---------------------------------------------------------------------------------


def test_one_crawler_per_crawled_zone(plan: OfflinePlan) -> None:
    crawlers = _in_catalog(plan, CRAWLER)
    assert sorted(_crawler_zone(plan, c) for c in crawlers) == sorted(plan.config.catalog.crawled_zones)


def test_crawlers_use_the_security_configuration(plan: OfflinePlan) -> None:
    (security,) = _in_catalog(plan, SECURITY_CONFIGURATION)
    for crawler in _in_catalog(plan, CRAWLER):
        assert crawler.inputs["securityConfiguration"] == security.inputs["name"], crawler.name


def test_crawlers_are_scheduled_as_configured(plan: OfflinePlan) -> None:
    for crawler in _in_catalog(plan, CRAWLER):
        assert crawler.inputs.get("schedule") == plan.config.catalog.crawler_schedule, crawler.name


def test_crawlers_target_only_their_zone_bucket(plan: OfflinePlan) -> None:
    for crawler in _in_catalog(plan, CRAWLER):
        zone = _crawler_zone(plan, crawler)
        assert [t["path"] for t in crawler.inputs["s3Targets"]] == [f"s3://{_bucket(plan, zone)}/"]


def test_crawlers_log_schema_changes_and_deletions_instead_of_applying_them(plan: OfflinePlan) -> None:
    for crawler in _in_catalog(plan, CRAWLER):
        assert crawler.inputs["schemaChangePolicy"] == {"updateBehavior": "LOG", "deleteBehavior": "LOG"}


def test_crawlers_obey_the_aws_rule_for_crawling_new_folders_only(plan: OfflinePlan) -> None:
    # Glue rejects CRAWL_NEW_FOLDERS_ONLY unless update and delete behaviours are both LOG.
    for crawler in _in_catalog(plan, CRAWLER):
        if crawler.inputs.get("recrawlPolicy", {}).get("recrawlBehavior") == "CRAWL_NEW_FOLDERS_ONLY":
            policy = crawler.inputs["schemaChangePolicy"]
            assert policy["updateBehavior"] == "LOG" and policy["deleteBehavior"] == "LOG", crawler.name


def test_crawler_configuration_is_valid_json(plan: OfflinePlan) -> None:
    for crawler in _in_catalog(plan, CRAWLER):
        assert json.loads(crawler.inputs["configuration"])["Version"] == 1.0


# --- crawler roles ----------------------------------------------------------------------------


def test_crawler_roles_are_trusted_by_glue_only(plan: OfflinePlan) -> None:
    role_names = {c.inputs["role"].split("/")[-1] for c in _in_catalog(plan, CRAWLER)}
    roles = [r for r in _in_catalog(plan, ROLE) if r.inputs["name"] in role_names]
    assert len(roles) == len(role_names)
    for role in roles:
        (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        assert trust["Principal"] == {"Service": ["glue.amazonaws.com"]}
        assert trust["Action"] == "sts:AssumeRole"


def test_crawler_roles_have_no_managed_policies(plan: OfflinePlan) -> None:
    assert _in_catalog(plan, ATTACHMENT) == []


def test_crawler_policies_have_no_wildcard_actions(plan: OfflinePlan) -> None:
    for crawler in _in_catalog(plan, CRAWLER):
        for statement in _crawler_policy(plan, crawler):
            wildcards = [a for a in _actions(statement) if "*" in a]
            assert not wildcards, f"{crawler.name} {statement['Sid']}: {wildcards}"


def test_crawler_s3_access_is_only_its_zone_bucket(plan: OfflinePlan) -> None:
    for crawler in _in_catalog(plan, CRAWLER):
        arn = f"arn:aws:s3:::{_bucket(plan, _crawler_zone(plan, crawler))}"
        s3_statements = [s for s in _crawler_policy(plan, crawler) if any(a.startswith("s3:") for a in _actions(s))]
        assert s3_statements
        resources = {r for s in s3_statements for r in _resources(s)}
        assert resources == {arn, f"{arn}/*"}, crawler.name


def test_crawler_s3_access_is_read_only(plan: OfflinePlan) -> None:
    for crawler in _in_catalog(plan, CRAWLER):
        s3_actions = {a for s in _crawler_policy(plan, crawler) for a in _actions(s) if a.startswith("s3:")}
        assert s3_actions <= {"s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket", "s3:GetBucketLocation"}


def test_crawler_glue_access_is_only_its_database(plan: OfflinePlan) -> None:
    prefix = f"arn:aws:glue:{plan.config.region}:"
    for crawler in _in_catalog(plan, CRAWLER):
        database = crawler.inputs["databaseName"]
        glue = [s for s in _crawler_policy(plan, crawler) if any(a.startswith("glue:") for a in _actions(s))]
        assert glue
        for resource in {r for s in glue for r in _resources(s)}:
            assert resource.startswith(prefix), resource
            scope = resource.split(":", 5)[5]
            assert scope in {"catalog", f"database/{database}", f"table/{database}/*"}, f"{crawler.name}: {resource}"


def test_crawler_glue_access_never_deletes(plan: OfflinePlan) -> None:
    for crawler in _in_catalog(plan, CRAWLER):
        glue_actions = {a for s in _crawler_policy(plan, crawler) for a in _actions(s) if a.startswith("glue:")}
        assert not {a for a in glue_actions if a.startswith(("glue:Delete", "glue:BatchDelete"))}


def test_crawler_logs_access_is_only_glue_crawler_log_groups(plan: OfflinePlan) -> None:
    for crawler in _in_catalog(plan, CRAWLER):
        logs = [s for s in _crawler_policy(plan, crawler) if any(a.startswith("logs:") for a in _actions(s))]
        assert logs
        for resource in {r for s in logs for r in _resources(s)}:
            assert re.fullmatch(r"arn:aws:logs:[a-z0-9-]+:\d{12}:log-group:/aws-glue/crawlers\*", resource), resource


def test_crawler_kms_access_is_only_the_platform_key(plan: OfflinePlan) -> None:
    for crawler in _in_catalog(plan, CRAWLER):
        kms = [s for s in _crawler_policy(plan, crawler) if any(a.startswith("kms:") for a in _actions(s))]
        assert {r for s in kms for r in _resources(s)} == {plan.outputs["kmsKeyArn"]}


# --- tables -----------------------------------------------------------------------------------


def _table(plan: OfflinePlan, zone: str, name: str) -> PlannedResource:
    database = plan.outputs["glueDatabases"][zone]
    found = [t for t in _in_catalog(plan, TABLE) if t.inputs["name"] == name and t.inputs["databaseName"] == database]
    assert len(found) == 1, f"{len(found)} tables {database}.{name}"
    return found[0]


def test_only_declared_tables_are_created(plan: OfflinePlan) -> None:
    """Besides the declared tables, only the drift reports table, when a model runs the platform monitor."""
    declared = {(spec.zone, spec.name) for spec in plan.config.catalog.tables}
    reporting = {("monitoring", "drift_reports")} if drift_report_models(plan.config) else set()
    zones = _zone_of_database(plan)
    created = {(zones[t.inputs["databaseName"]], t.inputs["name"]) for t in _in_catalog(plan, TABLE)}
    assert created == declared | reporting


def test_every_declared_table_has_exactly_the_declared_columns(plan: OfflinePlan) -> None:
    for spec in plan.config.catalog.tables:
        table = _table(plan, spec.zone, spec.name)
        columns = [(c["name"], c["type"]) for c in table.inputs["storageDescriptor"]["columns"]]
        assert columns == [(c.name, c.type) for c in spec.columns]


def test_every_declared_table_has_exactly_the_declared_partition_keys(plan: OfflinePlan) -> None:
    for spec in plan.config.catalog.tables:
        table = _table(plan, spec.zone, spec.name)
        keys = [(k["name"], k["type"]) for k in table.inputs.get("partitionKeys") or []]
        assert keys == [(k.name, k.type) for k in spec.partition_keys]


def test_every_declared_table_lives_inside_its_zone_bucket(plan: OfflinePlan) -> None:
    for spec in plan.config.catalog.tables:
        location = _table(plan, spec.zone, spec.name).inputs["storageDescriptor"]["location"]
        assert location == f"s3://{_bucket(plan, spec.zone)}/{spec.location_prefix}"


def test_every_declared_table_is_external_parquet(plan: OfflinePlan) -> None:
    for spec in plan.config.catalog.tables:
        table = _table(plan, spec.zone, spec.name)
        descriptor = table.inputs["storageDescriptor"]
        assert table.inputs["tableType"] == "EXTERNAL_TABLE"
        assert table.inputs["parameters"]["classification"] == "parquet"
        assert descriptor["serDeInfo"]["serializationLibrary"].endswith("ParquetHiveSerDe")
        assert descriptor["inputFormat"].endswith("MapredParquetInputFormat")
        assert descriptor["outputFormat"].endswith("MapredParquetOutputFormat")


# --- variations -------------------------------------------------------------------------------


def test_no_schedule_gives_on_demand_crawlers() -> None:
    plan = run_program("prod", overrides={"catalog": _catalog_with("prod", crawlerSchedule=None)})
    crawlers = _in_catalog(plan, CRAWLER)
    assert crawlers
    assert all(c.inputs.get("schedule") is None for c in crawlers)


def test_no_crawled_zones_gives_no_crawlers_and_no_crawler_roles() -> None:
    plan = run_program("dev", overrides={"catalog": _catalog_with("dev", crawledZones=[])})
    assert _in_catalog(plan, CRAWLER) == []
    assert _in_catalog(plan, ROLE) == []


def test_a_table_declared_in_another_zone_lives_in_that_zone() -> None:
    events = {
        "name": "raw_events",
        "zone": "raw",
        "prefix": "landing/events/",
        "columns": [{"name": "payload", "type": "string"}, {"name": "amount", "type": "decimal(10,2)"}],
    }
    declared = json.loads(read_stack_values("dev")["mlops:catalog"])["tables"]
    plan = run_program("dev", overrides={"catalog": _catalog_with("dev", tables=[*declared, events])})
    table = _table(plan, "raw", "raw_events")
    assert table.inputs["storageDescriptor"]["location"] == f"s3://{_bucket(plan, 'raw')}/landing/events/"
    assert not table.inputs.get("partitionKeys")


def test_glue_databases_are_created_only_by_the_catalog(plan: OfflinePlan) -> None:
    assert all(r.component == CATALOG for r in plan.of_type(DATABASE))


def test_the_curated_crawler_skips_the_ingestion_staging_area(plan: OfflinePlan) -> None:
    """Half-written batches under _staging/ would be catalogued as a table of their own."""
    from mlops.ingestion import STAGING_PREFIX

    crawlers = [c for c in _in_catalog(plan, "aws:glue/crawler:Crawler") if _crawler_zone(plan, c) == "curated"]
    for crawler in crawlers:
        (target,) = crawler.inputs["s3Targets"]
        assert f"{STAGING_PREFIX}**" in target["exclusions"]
