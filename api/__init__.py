"""The REST service: FastAPI over `RunService`, one router per resource.

uvicorn --factory api.main:create_app      # or: finetune-agent serve
"""
