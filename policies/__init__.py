"""The platform's CrossGuard policy pack (``pulumi preview --policy-pack policies``).

``policies.rules`` holds the policies as importable objects (tests and ``verify.policy_check`` use
them); ``__main__.py`` serves them to the Pulumi engine and is never imported by tests, because
constructing a ``PolicyPack`` starts a gRPC server and blocks.
"""
