"""Settings of the responders (stack key ``deployment``): where an approved model version's deployment goes.

The alarm-driven retraining limits are per model, under ``models[].monitoring.retraining``
(:class:`infra.monitoring.settings.RetrainingSettings`): the monitoring layer decides which alarms retrain.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from infra.types import Section


class DeploymentHookSettings(Section):
    """Where the approval responder dispatches a deployment when a model version is approved."""

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
