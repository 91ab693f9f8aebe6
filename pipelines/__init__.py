"""The example project's pipelines: census training, inference and a real-time endpoint.

They are written with the public authoring API (`mlharness`) like any team's, and listed
in the repository's mlharness.yaml; the harness's end-to-end tests run them.
"""
