"""Runtime library shared by ingestion, pipelines, the inference container and responders.

Nothing here imports Pulumi: this code runs in SageMaker jobs, containers and Lambda functions.
"""
