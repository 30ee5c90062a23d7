"""What the tests and the benchmarks drive the real components with: the Docker stack of
docker-compose.yml built and run for real, and free local ports. Not part of the product."""
