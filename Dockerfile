FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY mailmentor ./mailmentor
COPY workers ./workers
COPY rules ./rules
RUN pip install --no-cache-dir -e .
ENV MAILMENTOR_DATA_DIR=/data MAILMENTOR_RULES_DIR=/app/rules
VOLUME ["/data"]
CMD ["mailmentor", "run"]
