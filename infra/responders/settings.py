"""Settings of the responders (stack key ``deployment``): where an approved model version's deployment goes,
and whether the two serialised responders reserve Lambda concurrency.

The alarm-driven retraining limits are per model, under ``models[].monitoring.retraining``
(:class:`infra.monitoring.settings.RetrainingSettings`): the monitoring layer decides which alarms retrain.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from infra.types import Section


class DeploymentHookSettings(Section):
    """Where the approval responder dispatches a deployment when a model version is approved, and whether the
    responders that act once at a time (``retrain_on_alarm``, ``dispatch_deployment``) reserve concurrency."""

    kind: Literal["none", "github-workflow"] = Field(
        default="none",
        description="none (notify only) or github-workflow (POST a workflow_dispatch that runs `pulumi up`).",
    )
    repository: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")] | None = Field(
        default=None, description="GitHub repository 'owner/name' whose workflow deploys (github-workflow)."
    )
    workflow: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+\.ya?ml$")] | None = Field(
        default=None, description="Workflow file name, e.g. deploy.yml (github-workflow)."
    )
    ref: Annotated[str, StringConstraints(min_length=1, max_length=255)] = Field(
        default="main", description="Git ref the workflow runs on."
    )
    token_secret_name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9/_+=.@-]{1,512}$")] | None = Field(
        default=None,
        description="Secrets Manager secret holding the GitHub token (created outside Pulumi; never in the stack file).",
    )
    reserve_concurrency: bool = Field(
        default=False,
        description=(
            "Reserve a concurrency of 1 for retrain_on_alarm and dispatch_deployment (caps each and runs it one "
            "invocation at a time). Off by default: Lambda refuses a reservation that leaves less than the "
            "account's minimum unreserved concurrency (any reservation when the account's quota is 10), and "
            "neither needs it: a conditional DynamoDB write serialises retraining starts, and the deploy "
            "workflow's per-stack concurrency group serialises `pulumi up`. Refused while a model has "
            "training.retrainOnNewData: its SQS queue invokes retrain_on_alarm up to 2 at once."
        ),
    )

    @model_validator(mode="after")
    def _complete(self) -> DeploymentHookSettings:
        if self.kind == "github-workflow":
            missing = [
                k
                for k, v in (
                    ("repository", self.repository),
                    ("workflow", self.workflow),
                    ("tokenSecretName", self.token_secret_name),
                )
                if v is None
            ]
            if missing:
                raise ValueError(f"kind=github-workflow needs {', '.join(missing)}")
        return self
