"""SageMaker inference server for scikit-learn models built on a shared feature spec (see README.md)."""
