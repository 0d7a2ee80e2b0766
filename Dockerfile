# finetune-agent: the REST API and its run workers (CPU image).
#   docker build -t finetune-agent .
#   docker run -p 8000:8000 -v fa-home:/home/finetune/.finetune-agent finetune-agent
# Workers without the API, on a shared database: the same image with `finetune-agent worker`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_DATASETS_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false \
    LANGSMITH_TRACING=false \
    FINETUNE_AGENT_HOME=/home/finetune/.finetune-agent \
    FINETUNE_AGENT_DATA_ROOTS=/home/finetune/.finetune-agent/data

WORKDIR /app
# torch's CPU wheel first: a bare requirement would pull a multi-GB CUDA build.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
COPY pyproject.toml README.md langgraph.json constraints.txt ./
COPY llmfinetune_agent ./llmfinetune_agent
COPY phases ./phases
COPY models ./models
COPY api ./api
COPY configs ./configs
# The lock file's exact versions, as CI installs them (torch==2.13.0 there matches the +cpu build);
# the ray extra: the same image serves as a Ray head or worker node (docker-compose.yml).
RUN pip install -c constraints.txt ".[bertscore,ray]"

RUN useradd --create-home finetune && mkdir -p "$FINETUNE_AGENT_HOME/data" \
    && chown -R finetune "$FINETUNE_AGENT_HOME"
USER finetune
VOLUME ["/home/finetune/.finetune-agent"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
# Inside a container 0.0.0.0 is needed to be reachable; set FINETUNE_AGENT_API_KEY.
CMD ["finetune-agent", "serve", "--host", "0.0.0.0", "--port", "8000"]
