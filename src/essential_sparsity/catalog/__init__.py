"""The models and tasks the pipeline knows, built in or declared in params.yaml's catalog, and
where each one's weights and data come from."""
