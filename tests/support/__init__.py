"""Helpers the tests share: resource type tokens (:mod:`tests.support.types`), plan queries
(:mod:`tests.support.plans`) and the guard against accidental renames (:mod:`tests.support.urns`)."""
