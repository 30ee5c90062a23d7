# The search image: CPU PyTorch by default.
# For CUDA: docker compose build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
FROM python:3.11-slim

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

WORKDIR /app
RUN pip install --no-cache-dir "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"
COPY pyproject.toml README.md ./
COPY data ./data
COPY models ./models
COPY search ./search
RUN pip install --no-cache-dir -e . && mkdir -p studies/artifacts

# Workers read their settings from the environment (see docker-compose.yml).
ENV PYTHONUNBUFFERED=1
CMD ["python", "-m", "search.run", "--help"]
