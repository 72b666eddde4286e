# MH1 Console: two commands do all the set-up on a fresh machine.
#   make demo   venv + services + migrations + demo data, then web + worker + beat (Ctrl-C stops all)
#   make test   venv + services + Chromium + lint + checks + the whole test suite (browser tests too)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum requirements.txt | cut -c1-12)
PORT ?= 8000
# Prints `export DATABASE_URL=... REDIS_URL=...`; fails (and stops make) when a service is missing.
SERVICES = env=$$(scripts/ensure_services.sh) && eval "$$env"

.PHONY: demo test lint venv services migrate seed run clean-local stop-services

venv: $(STAMP)

$(STAMP): requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	@rm -f $(VENV)/.installed-* && touch $@

services: venv
	@$(SERVICES) && echo "DATABASE_URL=$$DATABASE_URL REDIS_URL=$$REDIS_URL"

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: venv
	@$(SERVICES) && export DEBUG=1 && scripts/ensure_chromium.sh && set -x && \
	$(BIN)/ruff check . && \
	$(BIN)/ruff format --check . && \
	$(BIN)/python manage.py check && \
	$(BIN)/python manage.py makemigrations --check --dry-run && \
	$(BIN)/pytest --create-db $(PYTEST_ARGS)

migrate: venv
	@$(SERVICES) && DEBUG=1 $(BIN)/python manage.py migrate_console

seed: migrate
	@$(SERVICES) && DEBUG=1 $(BIN)/python manage.py seed_demo --port $(PORT)

demo: venv
	@$(SERVICES) && export DEBUG=1 MH1_PORT=$(PORT) \
	  EMAIL_BACKEND=connectors.mail.SMTPBackend EMAIL_HOST=127.0.0.1 EMAIL_PORT=2525 && \
	$(BIN)/python manage.py migrate_console -v0 && \
	$(BIN)/python manage.py seed_demo --port $(PORT) && \
	echo && echo "  Platform admin:  http://localhost:$(PORT)/admin/" && \
	echo "  Tenant admins:   http://acme.localhost:$(PORT)/admin/   http://globex.localhost:$(PORT)/admin/" && \
	echo "  Health:          http://acme.localhost:$(PORT)/healthz   API docs: http://acme.localhost:$(PORT)/api/docs/" && \
	echo "  Vendor sandbox:  http://127.0.0.1:8025/_sandbox (SMTP on 2525; mail to unsubscribe-* comes back unsubscribed)" && \
	echo "  Ctrl-C stops web, worker and beat." && echo && \
	exec $(BIN)/honcho -f Procfile start

stop-services:
	scripts/ensure_services.sh --stop

clean-local: stop-services
	rm -rf .local
