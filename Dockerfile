# The search image: CPU PyTorch by default.
# For CUDA: docker compose build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
# The base image and pip's package source are build arguments, so the same file builds offline
# from a local base and a local wheelhouse (harness/stack.py does: BASE_IMAGE=its Debian image,
# PIP_NO_INDEX=1, PIP_FIND_LINKS=/wheels).
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG PIP_NO_INDEX
ARG PIP_FIND_LINKS

WORKDIR /app
RUN pip install --no-cache-dir "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"
# The dependencies first, in a layer of their own: a change of the code does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt
COPY README.md ./
COPY data ./data
COPY models ./models
COPY search ./search
RUN pip install --no-cache-dir --no-deps -e . && mkdir -p studies/artifacts

# The commands and their flags come from docker-compose.yml, which fills them in from its
# variables (STUDY, TRIALS, STORAGE_URL, ...).
ENV PYTHONUNBUFFERED=1
CMD ["python", "-m", "search.run", "--help"]
