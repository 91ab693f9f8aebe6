"""Files the harness reads at run time, shipped inside the package (never read from a checkout):
the build contexts of its images, the project `mlharness init` writes, the console's assets."""

from pathlib import Path

HERE = Path(__file__).resolve().parent
IMAGES = HERE / "images"
JOB_IMAGE_CONTEXT = IMAGES / "job"  # the built-in image named `job`
LOCAL_AWS_IMAGE_CONTEXT = IMAGES / "local-aws"  # the local AWS as a container (docker-compose.yml)
BASE_IMAGE_SCRIPT = IMAGES / "base" / "build-base.sh"  # the base image, where nothing can be pulled
PROJECT_TEMPLATE = HERE / "project_template"
CONSOLE = HERE / "console"  # the web console's stylesheet: every asset ships with the package
