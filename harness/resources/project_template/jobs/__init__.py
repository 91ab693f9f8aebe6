"""The code the pipeline's processing jobs run, shipped as a bundle with every run."""
