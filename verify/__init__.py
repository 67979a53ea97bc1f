"""Verification of the platform program without a cloud or the Pulumi CLI: tools of their own, never imported
by the program (``infra/``).

- :mod:`verify.mock_engine` runs the program for a stack under Pulumi's mock engine and records what it registers;
- :mod:`verify.policy_check` applies the policy pack (``policies/``) to such a plan as the engine would;
- :mod:`verify.plan` is the offline plan command (``python -m verify.plan --stack prod``, ``make plan``).
"""
